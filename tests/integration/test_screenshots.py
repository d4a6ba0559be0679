"""Screenshots on real parts: ``GET /api/v1/consoles/{id}/screenshot`` and ``guacbridge
screenshot`` → guacbridge serve → guacd 1.3.0 → Xvnc or sshd."""
from __future__ import annotations

import asyncio
import io
import socket
import struct
import subprocess
import sys
import time

import pytest
from parts import require
from PIL import Image, ImageChops, ImageStat
from service_fixtures import start_service

from guacbridge import protocol

pytestmark = pytest.mark.integration


def screenshot(service, console_id: str, **query) -> Image.Image:
    r = service.api("GET", f"/api/v1/consoles/{console_id}/screenshot", params=query)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(r.content))


def read_xwd(data: bytes) -> Image.Image:
    """An X window dump (``xwd -root``) as an RGB image: the header's 25 big-endian words,
    the window name, the colour map, then ZPixmap rows (TrueColor, 32 bits a pixel)."""
    fields = struct.unpack(">25I", data[:100])
    header_size, _, pixmap_format, _, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line, visual_class = (fields[7], fields[11],
                                                                fields[12], fields[13])
    red, green, blue, ncolors = fields[14], fields[15], fields[16], fields[19]
    assert pixmap_format == 2 and bits_per_pixel == 32 and visual_class == 4, fields  # ZPixmap
    assert (red, green, blue) == (0xFF0000, 0xFF00, 0xFF), fields
    pixels = data[header_size + 12 * ncolors:][:bytes_per_line * height]
    raw_mode = "BGRX" if byte_order == 0 else "XRGB"       # LSBFirst / MSBFirst
    return Image.frombytes("RGB", (width, height), pixels, "raw", raw_mode, bytes_per_line)


def xwd_of(display: int) -> Image.Image:
    require("xwd", "x11-apps")
    dump = subprocess.run(["xwd", "-root", "-silent", "-display", f":{display}"],
                          capture_output=True, check=True, timeout=30).stdout
    return read_xwd(dump)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference over all pixels and channels, as a share of 255."""
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / len(stat.mean) / 255


def test_a_vnc_screenshot_matches_what_xwd_reads_from_the_same_xvnc(service, vnc_desktop,
                                                                     vnc_target):
    reply = service.create(vnc_target)
    shot = screenshot(service, reply["id"])
    truth = xwd_of(vnc_desktop.display)
    assert shot.size == truth.size == (1024, 768)
    assert mean_difference(shot, truth) < 0.03
    # the comparison tells desktops apart: an empty screen is far from it
    assert mean_difference(Image.new("RGB", truth.size), truth) > 0.1


def test_width_scales_the_screenshot_down(service, vnc_target):
    reply = service.create(vnc_target)
    assert screenshot(service, reply["id"], width=256).size == (256, 192)
    assert screenshot(service, reply["id"], width=4000).size == (1024, 768)   # never up


@pytest.mark.parametrize("width", ["0", "-3", "abc", "1.5", "9000"])
def test_a_bad_width_is_a_400_that_says_what_is_allowed(service, vnc_target, width):
    reply = service.create(vnc_target)
    r = service.api("GET", f"/api/v1/consoles/{reply['id']}/screenshot",
                    params={"width": width})
    assert r.status_code == 400
    assert "width must be a whole number of pixels from 1 to 8192" in r.json()["details"]


def text_lines(image: Image.Image, light: int = 128) -> list[tuple[int, int, int, int]]:
    """Bands of rows holding light pixels (a terminal's lines of text): (top, bottom, left,
    right) of each, the scroll bar at the right edge left out."""
    gray = image.convert("L").crop((0, 0, image.width - 24, image.height))
    lit_rows = []
    for y in range(gray.height):
        row = gray.crop((0, y, gray.width, y + 1)).point(lambda v: 255 if v >= light else 0)
        box = row.getbbox()
        lit_rows.append((box[0], box[2]) if box else None)
    bands, start = [], None
    for y, span in enumerate([*lit_rows, None]):
        if span is not None and start is None:
            start = y
        elif span is None and start is not None:
            spans = [s for s in lit_rows[start:y] if s]
            bands.append((start, y, min(s[0] for s in spans), max(s[1] for s in spans)))
            start = None
    return bands


def test_an_ssh_screenshot_shows_the_terminal_with_its_prompt(service, sshd, console_user):
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"],
                            "password": console_user["password"]})
    shot = screenshot(service, reply["id"]).convert("RGB")
    assert shot.size == (1024, 768)
    dark = sum(ImageStat.Stat(shot.convert("L").point(lambda v: 255 if v < 40 else 0)).mean)
    assert dark / 255 > 0.8                              # a terminal's dark background
    lines = text_lines(shot)
    # The prompt, user@host:~$, at the left edge: an empty terminal has its cursor alone.
    prompt = f"{console_user['name']}@{socket.gethostname()}:~$"
    top, bottom, left, right = lines[-1]                 # the last line of text
    assert left < 12 and bottom - top < 30, lines
    assert 6 * (len(prompt) - 2) <= right - left <= 12 * (len(prompt) + 3), (prompt, lines)


def test_a_screenshot_leaves_the_console_token_usable(service, vnc_target, tunnel):
    reply = service.create(vnc_target)
    screenshot(service, reply["id"])
    assert service.get(reply["id"])["state"] == "pending"

    async def scenario():
        async with tunnel(reply) as t:
            return await t.until("sync")
    seen = asyncio.run(scenario())
    assert "error" not in seen and "img" in seen


def test_a_live_consoles_screenshot_joins_its_connection_read_only(service, vnc_target,
                                                                   tunnel, guacd):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            shot = await asyncio.to_thread(screenshot, service, reply["id"])
            await t.drain(0.5)
            t.send(protocol.encode("nop"))
            assert t.error is None                     # the owner's tunnel goes on
            return shot
    shot = asyncio.run(scenario())
    assert shot.size == (1024, 768)
    events = service.api("GET", f"/api/v1/consoles/{reply['id']}/events").json()["events"]
    taken = [e["data"] for e in events if e["kind"] == "screenshot"]
    assert taken and taken[-1]["joined"] is True, events


def test_a_live_ssh_consoles_screenshot_shows_the_users_own_terminal(service, sshd,
                                                                     console_user, tunnel):
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"],
                            "password": console_user["password"]})
    typed = "clear; for i in 1 2 3 4 5 6; do echo HHHHHHHHHHHHHHHH; done\r"

    def users_screen(lines) -> bool:
        # after the clear: six rows of H exactly as wide as each other, then the next prompt
        return len(lines) == 7 and [line[2:] for line in lines[:6]] == [lines[0][2:]] * 6

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            await t.drain(1.5)                             # the shell prompt
            for ch in typed:
                keysym = 0xFF0D if ch == "\r" else ord(ch)
                t.send(protocol.encode("key", keysym, 1) + protocol.encode("key", keysym, 0))
            for _ in range(10):                            # a busy machine runs it later
                await t.drain(0.5)
                lines = text_lines(await asyncio.to_thread(screenshot, service, reply["id"]))
                if users_screen(lines):
                    break
            return lines
    lines = asyncio.run(scenario())
    # what the user's page shows, not a fresh login of the screenshot's own
    assert users_screen(lines), lines


def test_a_closed_console_has_no_screenshot(service, vnc_target):
    reply = service.create(vnc_target)
    service.delete(reply["id"])
    r = service.api("GET", f"/api/v1/consoles/{reply['id']}/screenshot")
    assert r.status_code == 409 and "has ended" in r.json()["details"]


def test_a_console_whose_server_asks_for_a_password_it_lacks_is_a_409_at_once(service,
                                                                            vnc_target):
    reply = service.create({k: v for k, v in vnc_target.items() if k != "password"})
    started = time.monotonic()
    r = service.api("GET", f"/api/v1/consoles/{reply['id']}/screenshot")
    assert r.status_code == 409, r.text
    assert "asks for credentials the console was not given (password)" in r.json()["details"]
    assert time.monotonic() - started < 5                 # not the whole timeout
    assert service.get(reply["id"])["state"] == "pending"


@pytest.fixture
def silent_server():
    """A port that accepts and then says nothing: a VNC server that never draws."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_no_complete_frame_within_the_timeout_is_a_504_with_details(guacd, silent_server,
                                                                    tmp_path):
    settings = tmp_path / "guacbridge.toml"
    settings.write_text("[screenshots]\ntimeout = 1.5\n")
    quick = start_service(tmp_path / "service", f"{guacd.host}:{guacd.port}",
                          GUACBRIDGE_CONFIG=str(settings))
    try:
        reply = quick.create({"protocol": "vnc", "hostname": "127.0.0.1",
                              "port": silent_server, "password": "unused1"})
        started = time.monotonic()
        r = quick.api("GET", f"/api/v1/consoles/{reply['id']}/screenshot")
        took = time.monotonic() - started
    finally:
        quick.stop()
    assert r.status_code == 504, r.text
    assert "no complete frame of the console's screen came within 1.5 s" in r.json()["details"]
    assert "screenshots.timeout" in r.json()["details"]
    assert 1.4 < took < 5


def test_the_cli_writes_the_screenshot_to_a_png(service, vnc_target, tmp_path):
    reply = service.create(vnc_target)
    key = tmp_path / "key"
    key.write_text(service.api_key)
    out = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, "-m", "guacbridge.cli", "screenshot", reply["id"],
                           "-o", str(out), "--width", "512", "--url", service.base_url,
                           "--key-file", str(key)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (512, 384)
    missing = subprocess.run([sys.executable, "-m", "guacbridge.cli", "screenshot",
                              "00000000-0000-0000-0000-000000000000", "-o", str(tmp_path / "x"),
                              "--url", service.base_url, "--key-file", str(key)],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "404" in missing.stderr
    assert not (tmp_path / "x").exists()
