"""A recording part's thumbnail: its first complete frame, drawn in Python (:mod:`.screen`)
from the instructions the file holds, as a small PNG for the player's list of parts.

Only the beginning of a part is read: drawing stops at the first complete frame, so the
work is the same for a part of minutes or of days. A file that is huge before its first
frame, or garbled, cannot hold the service: reading stops after :data:`MAX_BYTES` or
:data:`MAX_SECONDS`, whichever comes first, and at most :data:`CONCURRENT` parts are drawn
at once (in threads, off the event loop). A part that ends earlier (guacd is still writing
it, or the session ended first) shows what was drawn by then.

guacd only ever appends to a recording, so a part's first complete frame never changes once
it is in the file, even while guacd goes on writing the rest: that thumbnail is kept (by
file, inode and width, a few MiB at most) and served again without reading the file. A
picture drawn before the first complete frame is not kept: the next request draws again.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import io
import pathlib
import time

from PIL import Image

from . import protocol
from .recordings import RecordingError
from .screen import Screen

DEFAULT_WIDTH = 160
MIN_WIDTH, MAX_WIDTH = 16, 1024
MAX_BYTES = 32 * 1024 * 1024       # read before the first frame, at most
MAX_SECONDS = 5.0                  # spent drawing one part, at most
CONCURRENT = 2                     # parts drawn at once (the machine's other work goes on)
CACHE_BYTES = 8 * 1024 * 1024      # kept thumbnails, in all
CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Thumbnail:
    png: bytes
    complete: bool      # the part's first complete frame (final); else what was drawn so far


def width_of(asked: str | None) -> int:
    """The ``width`` query argument; RecordingError 400 when it is not a width we draw."""
    if asked is None or asked == "":
        return DEFAULT_WIDTH
    if not asked.isdigit() or not asked.isascii() or not MIN_WIDTH <= int(asked) <= MAX_WIDTH:
        raise RecordingError(400, f"width must be a whole number of pixels from {MIN_WIDTH}"
                                  f" to {MAX_WIDTH} (default {DEFAULT_WIDTH})")
    return int(asked)


def draw(path: pathlib.Path, width: int, max_bytes: int = MAX_BYTES,
         max_seconds: float = MAX_SECONDS) -> Thumbnail:
    """The part at *path* drawn until its first complete frame (or as far as it, or the
    bounds, go), scaled down to *width*. Blocking. RecordingError 409 when nothing of the
    display was drawn in what was read (an empty part, or one that is not guacd's)."""
    screen = Screen()
    parser = protocol.Parser()
    deadline = time.monotonic() + max_seconds
    read = 0
    complete = False
    why = "it ends before guacd drew anything: an empty part, or one still starting"
    try:
        with path.open("rb") as f:
            while not complete:
                if read >= max_bytes or time.monotonic() >= deadline:
                    why = (f"no frame was complete within its first {read // 1024} KiB"
                           f" ({max_seconds:g} s at most are spent on a thumbnail)")
                    break
                data = f.read(min(CHUNK, max_bytes - read))
                if not data:
                    break
                read += len(data)
                for opcode, *args in parser.feed(data):
                    if screen.apply(opcode, args):
                        complete = True
                        break
    except protocol.ProtocolError as e:
        why = f"it is not a recording guacd wrote: {e}"
    except OSError as e:
        raise RecordingError(500, f"the recording cannot be read: {e.strerror}") from None
    if not all(screen.size):
        raise RecordingError(409, f"this part has no picture to show: {why}")
    png = screen.png(width)
    if not complete and _empty(png):       # sized, but nothing drawn on it
        raise RecordingError(409, f"this part has no picture to show: {why}")
    return Thumbnail(png, complete)


def _empty(png: bytes) -> bool:
    """Whether a (small) picture is transparent all over: a display nothing was drawn on."""
    with Image.open(io.BytesIO(png)) as image:
        return image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 0)


class Thumbnails:
    """Draws parts' thumbnails, a few at a time, and keeps the final ones."""

    def __init__(self, cache_bytes: int = CACHE_BYTES, concurrent: int = CONCURRENT) -> None:
        self._kept: collections.OrderedDict[tuple[str, int, int], bytes] = \
            collections.OrderedDict()
        self._kept_bytes = 0
        self._cache_bytes = cache_bytes
        self._drawing = asyncio.Semaphore(concurrent)

    async def png(self, path: pathlib.Path, width: int) -> bytes:
        """The thumbnail of the part at *path*, *width* pixels wide (RecordingError: why
        there is none)."""
        try:
            inode = (await asyncio.to_thread(path.stat)).st_ino
        except FileNotFoundError:
            raise RecordingError(404, "this recording part was removed (retention)") from None
        key = (str(path), inode, width)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        async with self._drawing:
            thumbnail = await asyncio.to_thread(draw, path, width)
        if thumbnail.complete:
            self._keep(key, thumbnail.png)
        return thumbnail.png

    def _keep(self, key: tuple[str, int, int], png: bytes) -> None:
        if key in self._kept or len(png) > self._cache_bytes:
            return
        self._kept[key] = png
        self._kept_bytes += len(png)
        while self._kept_bytes > self._cache_bytes:
            _, old = self._kept.popitem(last=False)
            self._kept_bytes -= len(old)
