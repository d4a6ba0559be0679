"""A recording part's thumbnail is its first complete frame, drawn from the file's
instructions: what guacd drew before that frame's sync is in it, what it drew later is not;
a part with nothing drawn says so, and a part still being written is drawn again next time."""
import asyncio
import base64
import io

import pytest
from PIL import Image

from guacbridge import protocol
from guacbridge.recordings import RecordingError
from guacbridge.thumbnails import Thumbnails, draw, width_of

RED, BLUE, GREEN = (220, 30, 30), (30, 60, 220), (20, 200, 40)


def png_b64(size, colour) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def first_frame() -> str:
    """A 640x480 display: red on the left half (an image stream), blue on the right (a
    filled rectangle), then the sync that completes the frame."""
    return "".join([
        protocol.encode("size", 0, 640, 480),
        protocol.encode("img", 1, 14, 0, "image/png", 0, 0),
        protocol.encode("blob", 1, png_b64((320, 480), RED)),
        protocol.encode("end", 1),
        protocol.encode("rect", 0, 320, 0, 320, 480),
        protocol.encode("cfill", 14, 0, *BLUE, 255),
        protocol.encode("sync", 1000),
    ])


def painted_green() -> str:
    """What guacd draws after the first frame: the whole display green."""
    return protocol.encode("rect", 0, 0, 0, 640, 480) + \
        protocol.encode("cfill", 14, 0, *GREEN, 255) + protocol.encode("sync", 2000)


def pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def near(a, b, tolerance=8) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a[:3], b, strict=True))


def test_the_thumbnail_is_the_first_frame_scaled_down(tmp_path):
    part = tmp_path / "part"
    part.write_text(first_frame() + painted_green())
    thumbnail = draw(part, 160)
    image = pixels(thumbnail.png)
    assert thumbnail.complete
    assert image.size == (160, 120)                 # the display's 4:3, 160 wide
    assert near(image.getpixel((40, 60)), RED)
    assert near(image.getpixel((120, 60)), BLUE)
    assert not any(near(image.getpixel((x, 60)), GREEN) for x in range(0, 160, 8))


def test_reading_stops_at_the_first_frame(tmp_path):
    """Past the frame (and past the 64 KiB read with it), garbage: never read."""
    frame = first_frame()
    padding = protocol.encode("nop") * ((128 * 1024 - len(frame)) // 6 + 1)
    part = tmp_path / "part"
    part.write_text(frame + padding + "garbage that is not Guacamole's protocol" * 1000)
    assert near(pixels(draw(part, 160).png).getpixel((40, 60)), RED)


def test_an_empty_part_has_no_thumbnail_and_says_why(tmp_path):
    part = tmp_path / "part"
    part.write_text("")
    with pytest.raises(RecordingError) as e:
        draw(part, 160)
    assert e.value.status == 409
    assert "this part has no picture to show: it ends before guacd drew anything" \
        in e.value.details


def test_a_file_that_is_not_a_recording_has_no_thumbnail(tmp_path):
    part = tmp_path / "part"
    part.write_bytes(b"\x89PNG not a recording at all")
    with pytest.raises(RecordingError) as e:
        draw(part, 160)
    assert e.value.status == 409 and "it is not a recording guacd wrote" in e.value.details


def test_a_huge_part_without_a_frame_is_read_only_so_far(tmp_path):
    part = tmp_path / "part"
    part.write_text(protocol.encode("size", 0, 640, 480)   # 1.2 MB and never a frame
                    + protocol.encode("nop") * 200_000)
    with pytest.raises(RecordingError) as e:
        draw(part, 160, max_bytes=256 * 1024)
    assert e.value.status == 409 and "no frame was complete within its first 256 KiB" \
        in e.value.details


def test_a_part_still_being_written_shows_what_is_drawn_and_is_drawn_again(tmp_path):
    part = tmp_path / "part"
    before_sync = first_frame().rsplit(protocol.encode("sync", 1000), 1)[0]
    part.write_text(protocol.encode("size", 0, 640, 480)
                    + protocol.encode("rect", 0, 0, 0, 640, 480)
                    + protocol.encode("cfill", 14, 0, *GREEN, 255))
    thumbnails = Thumbnails()
    early = pixels(asyncio.run(thumbnails.png(part, 160)))
    assert near(early.getpixel((40, 60)), GREEN)              # no frame yet: what there is
    part.write_text(before_sync + protocol.encode("sync", 1000))
    later = pixels(asyncio.run(thumbnails.png(part, 160)))
    assert near(later.getpixel((40, 60)), RED)                # not kept: drawn again
    with part.open("a") as f:                                 # guacd goes on writing
        f.write(painted_green())
    kept = asyncio.run(thumbnails.png(part, 160))
    assert near(pixels(kept).getpixel((40, 60)), RED)         # the first frame, kept


@pytest.mark.parametrize("asked", ["0", "15", "1025", "-3", "abc", "1e3", "٣٢"])
def test_a_width_out_of_range_is_refused(asked):
    with pytest.raises(RecordingError) as e:
        width_of(asked)
    assert e.value.status == 400 and "from 16 to 1024 (default 160)" in e.value.details


def test_the_width_defaults_to_160():
    assert width_of(None) == 160 and width_of("") == 160 and width_of("320") == 320
