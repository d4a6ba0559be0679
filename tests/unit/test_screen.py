"""Drawing a screen from Guacamole instructions: what each instruction does to the pixels."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from guacbridge.protocol import encode, parse
from guacbridge.screen import Screen

RED, GREEN, BLUE = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)


def encoded(image: Image.Image, fmt: str, **options: object) -> str:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return base64.b64encode(out.getvalue()).decode()


def feed(screen: Screen, *instructions: tuple[object, ...]) -> list[bool]:
    """Each instruction through the project's codec, as guacd's bytes would come."""
    done = []
    for elements in instructions:
        opcode, *args = parse(encode(*elements))
        done.append(screen.apply(opcode, args))
    return done


def image_stream(stream: int, layer: int, x: int, y: int, data: str, mask: int = 14,
                 mimetype: str = "image/png", chunk: int = 4096) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = [("img", stream, mask, layer, mimetype, x, y)]
    out += [("blob", stream, data[i:i + chunk]) for i in range(0, len(data), chunk)]
    out.append(("end", stream))
    return out


def pixels(screen: Screen, width: int | None = None) -> Image.Image:
    return Image.open(io.BytesIO(screen.png(width))).convert("RGBA")


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 0) -> bool:
    return all(abs(p - q) <= tolerance for p, q in zip(a, b, strict=True))


def test_a_sync_completes_a_frame_only_once_the_display_is_sized_and_drawn():
    screen = Screen()
    assert feed(screen, ("sync", 1)) == [False]
    assert feed(screen, ("size", 0, 40, 30), ("sync", 2)) == [False, False]
    assert feed(screen, ("rect", 0, 0, 0, 40, 30), ("cfill", 14, 0, 1, 2, 3, 255),
                ("sync", 3, 1)) == [False, False, True]       # guacd 1.6 adds the frame count
    assert screen.size == (40, 30)
    assert pixels(screen).getpixel((20, 15)) == (1, 2, 3, 255)


def test_drawing_only_into_a_buffer_is_not_a_frame():
    screen = Screen()
    assert feed(screen, ("size", 0, 10, 10), ("rect", -1, 0, 0, 4, 4),
                ("cfill", 12, -1, 255, 0, 0, 255), ("sync", 1)) == [False, False, False, False]


@pytest.mark.parametrize("fmt,mimetype,options,tolerance", [
    ("PNG", "image/png", {}, 0),
    ("JPEG", "image/jpeg", {"quality": 95}, 8),
    ("WEBP", "image/webp", {"lossless": True}, 0),
])
def test_img_streams_of_png_jpeg_and_webp_land_where_guacd_put_them(fmt, mimetype, options,
                                                                     tolerance):
    source = Image.new("RGB", (16, 8), (200, 40, 10))
    source.paste((10, 200, 40), (8, 0, 16, 8))
    screen = Screen()
    done = feed(screen, ("size", 0, 64, 32),
                *image_stream(1, 0, 20, 10, encoded(source, fmt, **options), mask=12,
                              mimetype=mimetype, chunk=50),
                ("sync", 5))
    assert done[-1] is True
    out = pixels(screen)
    assert near(out.getpixel((22, 12)), (200, 40, 10, 255), tolerance)
    assert near(out.getpixel((33, 15)), (10, 200, 40, 255), tolerance)
    assert out.getpixel((19, 12)) == (0, 0, 0, 0)           # outside the image: untouched
    assert out.getpixel((36, 12)) == (0, 0, 0, 0)


def test_an_image_is_drawn_at_end_not_before_and_other_streams_are_ignored():
    screen = Screen()
    data = encoded(Image.new("RGB", (4, 4), (9, 9, 9)), "PNG")
    feed(screen, ("size", 0, 8, 8), ("img", 3, 14, 0, "image/png", 0, 0), ("blob", 3, data),
         ("blob", 7, "AAAA"), ("audio", 7, "audio/L16"))
    assert pixels(screen).getpixel((1, 1)) == (0, 0, 0, 0)
    feed(screen, ("end", 3))
    assert pixels(screen).getpixel((1, 1)) == (9, 9, 9, 255)


def test_an_image_that_does_not_decode_draws_nothing_and_breaks_nothing():
    screen = Screen()
    done = feed(screen, ("size", 0, 8, 8), *image_stream(1, 0, 0, 0, "bm90IGFuIGltYWdl"),
                ("rect", 0, 0, 0, 2, 2), ("cfill", 14, 0, 5, 5, 5, 255), ("sync", 1))
    assert done[-1] is True
    assert pixels(screen).getpixel((4, 4)) == (0, 0, 0, 0)
    assert pixels(screen).getpixel((1, 1)) == (5, 5, 5, 255)


def test_copy_from_a_buffer_and_within_the_display():
    screen = Screen()
    data = encoded(Image.new("RGBA", (5, 5), BLUE), "PNG")
    feed(screen, ("size", 0, 30, 30), ("size", -2, 5, 5), *image_stream(1, -2, 0, 0, data),
         ("copy", -2, 0, 0, 5, 5, 14, 0, 10, 10),
         ("copy", 0, 10, 10, 5, 5, 12, 0, 20, 0))          # scrolling: a copy within a layer
    out = pixels(screen)
    assert out.getpixel((12, 12)) == BLUE
    assert out.getpixel((22, 2)) == BLUE
    assert out.getpixel((2, 2)) == (0, 0, 0, 0)


def test_copy_past_the_edges_is_clipped_not_an_error():
    screen = Screen()
    feed(screen, ("size", 0, 10, 10), ("rect", 0, 0, 0, 10, 10), ("cfill", 12, 0, *GREEN),
         ("copy", 0, -5, -5, 20, 20, 12, 0, 3, 3))
    out = pixels(screen)
    assert out.size == (10, 10)
    assert out.getpixel((9, 9)) == GREEN


def test_cfill_fills_the_rects_of_the_path_and_nothing_between_them():
    screen = Screen()
    feed(screen, ("size", 0, 20, 10), ("rect", 0, 0, 0, 5, 10), ("rect", 0, 15, 0, 5, 10),
         ("cfill", 14, 0, *RED))
    out = pixels(screen)
    assert out.getpixel((2, 5)) == RED and out.getpixel((17, 5)) == RED
    assert out.getpixel((10, 5)) == (0, 0, 0, 0)
    feed(screen, ("cfill", 14, 0, *GREEN))               # the fill used the path up
    assert pixels(screen).getpixel((2, 5)) == RED


def test_composite_modes_over_src_and_a_porter_duff_one():
    screen = Screen()
    feed(screen, ("size", 0, 30, 10), ("rect", 0, 0, 0, 30, 10), ("cfill", 12, 0, *BLUE),
         ("rect", 0, 0, 0, 10, 10), ("cfill", 14, 0, 255, 0, 0, 128),      # OVER: blended
         ("rect", 0, 10, 0, 10, 10), ("cfill", 12, 0, 255, 0, 0, 128),     # SRC: replaced
         ("rect", 0, 20, 0, 10, 10), ("cfill", 11, 0, 255, 0, 0, 255))     # ROVER: dest stays
    out = pixels(screen)
    assert near(out.getpixel((5, 5)), (128, 0, 127, 255), 2)
    assert near(out.getpixel((15, 5)), (255, 0, 0, 128), 1)
    assert out.getpixel((25, 5)) == BLUE


def test_the_general_composite_agrees_with_pillow_for_over():
    from guacbridge.screen import _porter_duff
    src = Image.new("RGBA", (2, 1), (200, 100, 50, 90))
    dst = Image.new("RGBA", (2, 1), (10, 20, 240, 200))
    general = _porter_duff(src, dst, 0xE).getpixel((0, 0))
    assert near(general, Image.alpha_composite(dst, src).getpixel((0, 0)), 2)
    assert _porter_duff(src, dst, 0x4).getpixel((0, 0))[3] == round(90 * 200 / 255)   # IN


def test_transfer_applies_the_raster_operation_bit_by_bit():
    screen = Screen()
    feed(screen, ("size", 0, 4, 1),
         ("rect", 0, 0, 0, 4, 1), ("cfill", 12, 0, 0x0F, 0xF0, 0x33, 255),
         ("size", -1, 4, 1), ("rect", -1, 0, 0, 4, 1), ("cfill", 12, -1, 0xFF, 0xFF, 0x0F, 255),
         ("transfer", -1, 0, 0, 2, 1, 0x6, 0, 0, 0),        # XOR
         ("transfer", -1, 0, 0, 1, 1, 0x3, 0, 3, 0))        # SRC
    out = pixels(screen)
    assert out.getpixel((0, 0)) == (0xF0, 0x0F, 0x3C, 255)
    assert out.getpixel((2, 0)) == (0x0F, 0xF0, 0x33, 255)
    assert out.getpixel((3, 0)) == (0xFF, 0xFF, 0x0F, 255)


def test_size_keeps_what_was_drawn_and_grows_or_shrinks_the_display():
    screen = Screen()
    feed(screen, ("size", 0, 10, 10), ("rect", 0, 0, 0, 10, 10), ("cfill", 12, 0, *RED),
         ("size", 0, 20, 5))
    out = pixels(screen)
    assert out.size == (20, 5)
    assert out.getpixel((5, 2)) == RED and out.getpixel((15, 2)) == (0, 0, 0, 0)


def test_visible_layers_are_composited_where_move_put_them_with_their_shade():
    screen = Screen()
    feed(screen, ("size", 0, 20, 20), ("rect", 0, 0, 0, 20, 20), ("cfill", 12, 0, *BLUE),
         ("size", 1, 4, 4), ("rect", 1, 0, 0, 4, 4), ("cfill", 12, 1, *RED),
         ("move", 1, 0, 10, 10, 1),
         ("size", 2, 4, 4), ("rect", 2, 0, 0, 4, 4), ("cfill", 12, 2, *GREEN),
         ("move", 2, 0, 11, 11, 2),                          # above layer 1
         ("size", 3, 4, 4), ("rect", 3, 0, 0, 4, 4), ("cfill", 12, 3, *RED),
         ("move", 3, 0, 0, 0, 0), ("shade", 3, 0))           # fully transparent
    out = pixels(screen)
    assert out.getpixel((10, 10)) == RED
    assert out.getpixel((12, 12)) == GREEN
    assert out.getpixel((1, 1)) == BLUE
    feed(screen, ("shade", 3, 128))
    assert near(pixels(screen).getpixel((1, 1)), (128, 0, 127, 255), 2)
    feed(screen, ("dispose", 2))
    assert pixels(screen).getpixel((12, 12)) == RED


def test_width_scales_down_never_up():
    screen = Screen()
    feed(screen, ("size", 0, 100, 50), ("rect", 0, 0, 0, 100, 50), ("cfill", 12, 0, *RED))
    assert pixels(screen, 40).size == (40, 20)
    assert pixels(screen, 400).size == (100, 50)
    assert pixels(screen).size == (100, 50)


def test_malformed_and_unknown_instructions_are_ignored():
    screen = Screen()
    assert screen.apply("size", ["0", "x"]) is False
    assert screen.apply("copy", ["0"]) is False
    assert screen.apply("cursor", ["0", "0", "-1", "0", "0", "1", "1"]) is False
    assert screen.apply("size", ["0", "100000", "100000"]) is False      # no 40-GB display
    assert screen.size == (0, 0)
    with pytest.raises(ValueError):
        screen.png()                     # no size yet: no picture, rather than an empty PNG
