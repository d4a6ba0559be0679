"""A console's screen drawn from the Guacamole instructions guacd sends, in Python with Pillow.

A :class:`Screen` is what guacamole-common-js's display is in the browser, without the
browser: it keeps the layers (0 is the default layer, the display; positive ones are visible
layers placed on a parent; negative ones are off-screen buffers that ``copy`` reads from),
decodes the ``img`` streams (PNG, JPEG, WebP in ``blob`` instructions, drawn at ``end``),
and applies ``copy``, ``transfer``, ``rect`` + ``cfill``/``lfill``, ``size``, ``move``,
``shade`` and ``dispose``. :meth:`Screen.apply` says when a ``sync`` completed a frame, so the
screenshot and the recording player's thumbnails know when to stop reading, and
:meth:`Screen.png` gives that frame as a PNG.

It draws what a screenshot needs and no more: the cursor, audio, video, clipping,
transforms and curved paths are ignored; composite modes apply within the drawn rectangle
(the browser's canvas clears outside it for some modes, which guacd does not rely on). It
knows nothing of sockets: whoever reads guacd (or a recording) feeds it instructions.
"""
from __future__ import annotations

import base64
import binascii
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageMath

log = logging.getLogger(__name__)

# Guacamole's channel masks (Porter-Duff, one bit per region): 0x8 source where the
# destination is empty, 0x4 source where both are, 0x2 destination where the source is
# empty, 0x1 destination where both are. OVER = 0xE, SRC = 0xC, PLUS = 0xF …
OVER = 0xE
SRC = 0xC

# Pixels an image stream may hold before we give up on it (a 16k x 16k display is far beyond
# any console): a hostile or broken stream must not make us decode without bound.
MAX_PIXELS = 16384 * 16384
MAX_STREAM_BYTES = 64 * 1024 * 1024


@dataclass
class _Layer:
    image: Image.Image
    autosize: bool           # buffers and new layers grow to what is drawn on them
    parent: int = 0
    x: int = 0
    y: int = 0
    z: int = 0
    opacity: int = 255
    path: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class _Stream:
    mask: int
    layer: int
    x: int
    y: int
    data: list[str] = field(default_factory=list)
    size: int = 0


class Screen:
    """The display one guacd connection (or one recording) draws, instruction by instruction."""

    def __init__(self) -> None:
        self._layers: dict[int, _Layer] = {0: _Layer(Image.new("RGBA", (0, 0)), autosize=False)}
        self._streams: dict[str, _Stream] = {}
        self._drawn = False       # something reached a visible layer since the display was sized
        self.frames = 0           # complete frames seen so far

    @property
    def size(self) -> tuple[int, int]:
        """The display's size in pixels (layer 0's); (0, 0) until guacd sent ``size``."""
        return self._layers[0].image.size

    def apply(self, opcode: str, args: Sequence[str]) -> bool:
        """One instruction guacd sent (or a recording holds); True when it completed a frame.

        A frame is complete at a ``sync`` once the default layer has a size and something
        was drawn on a visible layer. Unknown opcodes and malformed arguments draw nothing.
        """
        handler = _HANDLERS.get(opcode)
        if handler is None:
            return False
        try:
            return bool(handler(self, args))
        except (IndexError, ValueError) as exc:     # a malformed instruction draws nothing
            log.debug("screen: ignored malformed %s instruction (%s)", opcode, exc)
            return False

    def png(self, width: int | None = None) -> bytes:
        """The default layer (with visible layers composited) as a PNG.

        Scaled down to *width* if given (never up), keeping the aspect ratio.
        A display guacd has not sized yet has no picture: ValueError.
        """
        if not all(self.size):
            raise ValueError("the display has no size yet: no frame to show")
        image = self._render(0, set())
        if width is not None and 0 < width < image.width:
            height = max(1, round(image.height * width / image.width))
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    # -- instructions ------------------------------------------------------------------------

    def _sync(self, args: Sequence[str]) -> bool:
        width, height = self.size
        if width and height and self._drawn:
            self.frames += 1
            return True
        return False

    def _size(self, args: Sequence[str]) -> None:
        index, width, height = int(args[0]), int(args[1]), int(args[2])
        if width < 0 or height < 0 or width * height > MAX_PIXELS:
            raise ValueError(f"layer size {width}x{height} out of range")
        layer = self._layer(index)
        resized = Image.new("RGBA", (width, height))
        resized.paste(layer.image, (0, 0))
        layer.image = resized

    def _img(self, args: Sequence[str]) -> None:
        stream, mask, index = args[0], int(args[1]), int(args[2])
        self._streams[stream] = _Stream(mask, index, int(args[4]), int(args[5]))

    def _blob(self, args: Sequence[str]) -> None:
        stream = self._streams.get(args[0])
        if stream is None:          # audio, files, anything but an image: not ours to draw
            return
        stream.size += len(args[1])
        if stream.size > MAX_STREAM_BYTES:
            del self._streams[args[0]]
            raise ValueError("image stream too large")
        stream.data.append(args[1])

    def _end(self, args: Sequence[str]) -> None:
        stream = self._streams.pop(args[0], None)
        if stream is not None:
            self._draw_encoded(stream.mask, stream.layer, stream.x, stream.y, "".join(stream.data))

    def _png(self, args: Sequence[str]) -> None:
        """The pre-1.0 form of an image: ``png,mask,layer,x,y,data`` in one instruction."""
        self._draw_encoded(int(args[0]), int(args[1]), int(args[2]), int(args[3]), args[4])

    def _copy(self, args: Sequence[str]) -> None:
        source = self._layers.get(int(args[0]))
        if source is None:
            return
        x, y, width, height = (int(v) for v in args[1:5])
        box = _clip((x, y, x + width, y + height), source.image.size)
        if box is None:
            return
        patch = source.image.crop(box)
        dx, dy = int(args[7]) + box[0] - x, int(args[8]) + box[1] - y
        self._composite(int(args[6]), patch, dx, dy, int(args[5]))

    def _transfer(self, args: Sequence[str]) -> None:
        """A copy through a binary raster operation on each colour bit (RDP uses a few)."""
        source = self._layers.get(int(args[0]))
        if source is None:
            return
        x, y, width, height = (int(v) for v in args[1:5])
        function, index = int(args[5]) & 0xF, int(args[6])
        box = _clip((x, y, x + width, y + height), source.image.size)
        if box is None:
            return
        dx, dy = int(args[7]) + box[0] - x, int(args[8]) + box[1] - y
        layer = self._target(index, dx, dy, box[2] - box[0], box[3] - box[1])
        target = _clip((dx, dy, dx + box[2] - box[0], dy + box[3] - box[1]), layer.image.size)
        if target is None:
            return
        src = source.image.crop((box[0] + target[0] - dx, box[1] + target[1] - dy,
                                 box[0] + target[2] - dx, box[1] + target[3] - dy))
        dst = layer.image.crop(target)
        s = int.from_bytes(src.convert("RGB").tobytes(), "big")
        d = int.from_bytes(dst.convert("RGB").tobytes(), "big")
        ones = (1 << (8 * 3 * src.width * src.height)) - 1
        # bit 0: source and destination set, 1: source only, 2: destination only, 3: neither
        out = 0
        if function & 0x1:
            out |= s & d
        if function & 0x2:
            out |= s & ~d
        if function & 0x4:
            out |= ~s & d
        if function & 0x8:
            out |= ~s & ~d
        raw = (out & ones).to_bytes(3 * src.width * src.height, "big")
        layer.image.paste(Image.frombytes("RGB", src.size, raw).convert("RGBA"), target[:2])
        self._touched(index)

    def _rect(self, args: Sequence[str]) -> None:
        x, y, width, height = (int(v) for v in args[1:5])
        if width > 0 and height > 0:
            self._layer(int(args[0])).path.append((x, y, x + width, y + height))

    def _cfill(self, args: Sequence[str]) -> None:
        mask, index = int(args[0]), int(args[1])
        colour = tuple(max(0, min(255, int(v))) for v in args[2:6])
        self._fill(mask, index, lambda size: Image.new("RGBA", size, colour))

    def _lfill(self, args: Sequence[str]) -> None:
        mask, index = int(args[0]), int(args[1])
        source = self._layers.get(int(args[2]))
        if source is None or not source.image.width or not source.image.height:
            return
        tile = source.image.copy()

        def pattern(size: tuple[int, int]) -> Image.Image:
            image = Image.new("RGBA", size)
            for ty in range(0, size[1], tile.height):
                for tx in range(0, size[0], tile.width):
                    image.paste(tile, (tx, ty))
            return image
        self._fill(mask, index, pattern)

    def _move(self, args: Sequence[str]) -> None:
        index = int(args[0])
        if index <= 0:
            return
        layer = self._layer(index)
        layer.parent, layer.x, layer.y, layer.z = (int(v) for v in args[1:5])
        self._touched(index)

    def _shade(self, args: Sequence[str]) -> None:
        index = int(args[0])
        if index >= 0:
            self._layer(index).opacity = max(0, min(255, int(args[1])))
            self._touched(index)

    def _dispose(self, args: Sequence[str]) -> None:
        index = int(args[0])
        if index != 0:
            self._layers.pop(index, None)
            self._touched(index)

    # -- drawing -----------------------------------------------------------------------------

    def _layer(self, index: int) -> _Layer:
        layer = self._layers.get(index)
        if layer is None:
            layer = self._layers[index] = _Layer(Image.new("RGBA", (0, 0)), autosize=True)
        return layer

    def _target(self, index: int, x: int, y: int, width: int, height: int) -> _Layer:
        """The layer drawn on, grown first if it sizes itself to what it is given."""
        layer = self._layer(index)
        if layer.autosize:
            need = (max(layer.image.width, x + width), max(layer.image.height, y + height))
            if need != layer.image.size and need[0] * need[1] <= MAX_PIXELS:
                grown = Image.new("RGBA", need)
                grown.paste(layer.image, (0, 0))
                layer.image = grown
        return layer

    def _touched(self, index: int) -> None:
        if index >= 0:
            self._drawn = True

    def _draw_encoded(self, mask: int, index: int, x: int, y: int, data: str) -> None:
        try:
            raw = base64.b64decode(data, validate=False)
            with Image.open(io.BytesIO(raw)) as decoded:
                if decoded.width * decoded.height > MAX_PIXELS:
                    raise ValueError("image too large")
                image = decoded.convert("RGBA")
        except (binascii.Error, OSError, ValueError, Image.DecompressionBombError) as exc:
            log.debug("screen: ignored an image guacd sent that does not decode (%s)", exc)
            return
        self._composite(index, image, x, y, mask)

    def _composite(self, index: int, image: Image.Image, x: int, y: int, mask: int) -> None:
        layer = self._target(index, x, y, image.width, image.height)
        box = _clip((x, y, x + image.width, y + image.height), layer.image.size)
        if box is None:
            return
        if box != (x, y, x + image.width, y + image.height):
            image = image.crop((box[0] - x, box[1] - y, box[2] - x, box[3] - y))
        mask &= 0xF
        if mask == SRC:
            layer.image.paste(image, box[:2])
        elif mask == OVER:
            layer.image.alpha_composite(image, box[:2])
        else:
            below = layer.image.crop(box)
            layer.image.paste(_porter_duff(image, below, mask), box[:2])
        self._touched(index)

    def _fill(self, mask: int, index: int,
              paint: Callable[[tuple[int, int]], Image.Image]) -> None:
        """Fill the layer's path (its ``rect``s since the last fill) with *paint*(size)."""
        layer = self._layer(index)
        path, layer.path = layer.path, []
        if not path:
            return
        left, top = min(r[0] for r in path), min(r[1] for r in path)
        right, bottom = max(r[2] for r in path), max(r[3] for r in path)
        layer = self._target(index, left, top, right - left, bottom - top)
        box = _clip((left, top, right, bottom), layer.image.size)
        if box is None:
            return
        size = (box[2] - box[0], box[3] - box[1])
        shape = Image.new("L", size, 0)
        for r in path:
            shape.paste(255, (r[0] - box[0], r[1] - box[1], r[2] - box[0], r[3] - box[1]))
        source = paint(size)
        below = layer.image.crop(box)
        if mask & 0xF == SRC:
            drawn = below.copy()
            drawn.paste(source, (0, 0))
        elif mask & 0xF == OVER:
            drawn = below.copy()
            drawn.alpha_composite(source)
        else:
            drawn = _porter_duff(source, below, mask & 0xF)
        layer.image.paste(Image.composite(drawn, below, shape), box[:2])
        self._touched(index)

    def _render(self, index: int, seen: set[int]) -> Image.Image:
        """Layer *index* with its visible children on it (by z, then by index)."""
        seen.add(index)
        layer = self._layers[index]
        image = layer.image.copy()
        children = sorted((child.z, number) for number, child in self._layers.items()
                          if number > 0 and child.parent == index and number not in seen)
        for _, number in children:
            child = self._layers[number]
            if not child.image.width or not child.image.height or not child.opacity:
                continue
            drawn = self._render(number, seen)
            if child.opacity < 255:
                alpha = drawn.getchannel("A").point(lambda a, o=child.opacity: a * o // 255)
                drawn.putalpha(alpha)
            box = _clip((child.x, child.y, child.x + drawn.width, child.y + drawn.height),
                        image.size)
            if box is None:
                continue
            drawn = drawn.crop((box[0] - child.x, box[1] - child.y,
                                box[2] - child.x, box[3] - child.y))
            image.alpha_composite(drawn, box[:2])
        return image


Box = tuple[int, int, int, int]


def _clip(box: Box, size: tuple[int, int]) -> Box | None:
    """*box* cut to an image of *size*, or None when nothing of it is inside."""
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(size[0], box[2]), min(size[1], box[3])
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def _porter_duff(source: Image.Image, below: Image.Image, mask: int) -> Image.Image:
    """Source and destination (same size, RGBA) combined as Guacamole's channel *mask* says.

    Each of the four bits picks a region of Porter-Duff's: the source's factor is
    ``b8*(1-a_d) + b4*a_d``, the destination's ``b2*(1-a_s) + b1*a_s`` (PLUS, 0xF, adds both).
    """
    def factors(a_s: Any, a_d: Any) -> tuple[Any, Any]:
        f_s = ((1 - a_d) if mask & 0x8 else 0) + (a_d if mask & 0x4 else 0)
        f_d = ((1 - a_s) if mask & 0x2 else 0) + (a_s if mask & 0x1 else 0)
        return f_s, f_d

    def alpha_of(e: dict[str, Any]) -> Any:
        f_s, f_d = factors(e["a_s"], e["a_d"])
        return f_s * e["a_s"] + f_d * e["a_d"]

    def colour_of(e: dict[str, Any]) -> Any:
        f_s, f_d = factors(e["a_s"], e["a_d"])
        return (f_s * e["c_s"] * e["a_s"] + f_d * e["c_d"] * e["a_d"]) / (e["alpha"] + 1e-9)

    a_s = source.getchannel("A").convert("F").point(lambda v: v / 255)
    a_d = below.getchannel("A").convert("F").point(lambda v: v / 255)
    alpha = ImageMath.lambda_eval(alpha_of, a_s=a_s, a_d=a_d)
    bands = [_to_byte(ImageMath.lambda_eval(colour_of, a_s=a_s, a_d=a_d, alpha=alpha,
                                            c_s=source.getchannel(band).convert("F"),
                                            c_d=below.getchannel(band).convert("F")))
             for band in range(3)]
    bands.append(_to_byte(alpha.point(lambda v: v * 255)))
    return Image.merge("RGBA", bands)


def _to_byte(image: Image.Image) -> Image.Image:
    """A float band rounded and clipped to 0…255 (Pillow's F → L conversion clips)."""
    return image.point(lambda v: v + 0.5).convert("L")


_HANDLERS = {
    "sync": Screen._sync, "size": Screen._size, "img": Screen._img, "blob": Screen._blob,
    "end": Screen._end, "png": Screen._png, "copy": Screen._copy, "transfer": Screen._transfer,
    "rect": Screen._rect, "cfill": Screen._cfill, "lfill": Screen._lfill, "move": Screen._move,
    "shade": Screen._shade, "dispose": Screen._dispose,
}
