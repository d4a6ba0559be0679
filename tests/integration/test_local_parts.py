"""The part fixtures give real parts: a guacd that speaks, a desktop behind a password, a browser.

The Guacamole wire format is written and read raw here, not with guacbridge's codec, so that
these tests say something about the parts even when the codec is wrong.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest

from guacbridge import demo
from parts import require

pytestmark = pytest.mark.integration


def encode(*elements: str) -> bytes:
    return (",".join(f"{len(e)}.{e}" for e in elements) + ";").encode()


def read_instruction(sock: socket.socket, buffer: bytearray) -> list[str]:
    """One instruction, naively: guacd's output is ASCII, so lengths are byte counts."""
    while True:
        elements, pos = [], 0
        try:
            while True:
                dot = buffer.index(b".", pos)              # ValueError: not here yet
                end = dot + 1 + int(buffer[pos:dot])
                if end >= len(buffer):
                    raise ValueError("incomplete")
                elements.append(buffer[dot + 1:end].decode())
                pos = end + 1
                if buffer[end:end + 1] == b";":
                    del buffer[:pos]
                    return elements
        except ValueError:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError(f"guacd closed the connection; unread: {bytes(buffer[:200])!r}")
            buffer += chunk


def descendants(pids: list[int]) -> list[int]:
    """The parts and every process below them (guacd's connection children, xterm's shell)."""
    parents: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def test_guacd_answers_select_with_its_args(guacd):
    with socket.create_connection((guacd.host, guacd.port), 5) as sock:
        sock.settimeout(5)
        sock.sendall(encode("select", "vnc"))
        args = read_instruction(sock, bytearray())
    assert args[0] == "args"
    assert args[1].startswith("VERSION_")
    assert {"hostname", "port", "password"} <= set(args[2:])


def test_the_desktop_speaks_rfb_on_loopback(vnc_desktop):
    assert vnc_desktop.host == "127.0.0.1"
    with socket.create_connection((vnc_desktop.host, vnc_desktop.port), 5) as sock:
        sock.settimeout(5)
        assert sock.recv(12) == b"RFB 003.008\n"


def test_the_xterm_is_mapped_at_the_top_left(vnc_desktop):
    out = subprocess.run(["xwininfo", "-name", "guacbridge-demo"], capture_output=True,
                         text=True, env={**os.environ, "DISPLAY": f":{vnc_desktop.display}"},
                         check=True).stdout
    assert "Map State: IsViewable" in out
    x = int(re.search(r"Absolute upper-left X:\s+(-?\d+)", out).group(1))
    y = int(re.search(r"Absolute upper-left Y:\s+(-?\d+)", out).group(1))
    assert 0 <= x <= 10 and 0 <= y <= 40                   # only twm's border and title bar


def test_the_password_opens_the_desktop_and_is_in_no_log_and_no_argv(guacd, vnc_desktop,
                                                                      workdir_root):
    with socket.create_connection((guacd.host, guacd.port), 5) as sock:
        sock.settimeout(10)
        buffer = bytearray()
        sock.sendall(encode("select", "vnc"))
        args = read_instruction(sock, buffer)
        values = {"hostname": vnc_desktop.host, "port": str(vnc_desktop.port),
                  "password": vnc_desktop.password}
        sock.sendall(encode("size", "1024", "768", "96") + encode("audio") + encode("video")
                     + encode("image")
                     + encode("connect", args[1], *(values.get(n, "") for n in args[2:])))
        while (instruction := read_instruction(sock, buffer))[0] not in ("sync", "error"):
            pass
        assert instruction[0] == "sync", instruction       # the password is the right one
        pids = descendants([p.pid for p in vnc_desktop.parts] + [guacd.part.pid])
        password = vnc_desktop.password.encode()
        argvs = {}
        for pid in pids:
            try:
                argvs[pid] = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue                                   # ended meanwhile
        assert len(argvs) >= 5                             # Xvnc, twm, xterm, bash, guacd (+child)
        assert [pid for pid, argv in argvs.items() if password in argv] == []
    time.sleep(0.2)                                        # let guacd log the disconnect too
    logs = sorted(workdir_root.rglob("*.log"))
    assert {p.name for p in logs} >= {"guacd.log", "xvnc.log", "twm.log", "xterm.log"}
    assert [str(p) for p in logs if password in p.read_bytes()] == []
    assert (vnc_desktop.workdir / "passwd").stat().st_mode & 0o077 == 0


def test_stop_ends_the_process_and_a_second_stop_is_harmless(tmp_path):
    require("guacd", "guacd")
    g = demo.start_guacd(tmp_path)
    pid = g.part.pid
    assert pathlib.Path(f"/proc/{pid}").exists()
    g.stop()
    assert not pathlib.Path(f"/proc/{pid}").exists()       # ended and reaped
    g.stop()
    with pytest.raises(OSError):
        socket.create_connection((g.host, g.port), 1).close()


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    log = tmp_path / "stubborn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["sh", "-c", "trap '' TERM; echo ready; exec sleep 60"],
                                   stdout=out, start_new_session=True)
    part = demo.Part("stubborn", process, log)
    deadline = time.monotonic() + 5
    while b"ready" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)                                   # the trap is set before we signal
    started = time.monotonic()
    part.stop(timeout=0.5)
    assert time.monotonic() - started < 3
    assert process.returncode == -signal.SIGKILL
    assert not pathlib.Path(f"/proc/{part.pid}").exists()


@pytest.mark.e2e
def test_the_browser_renders_a_page(browser):
    page = browser.new_page()
    try:
        page.goto("data:text/html,<title>guacbridge smoke</title><p>hello</p>")
        assert page.title() == "guacbridge smoke"
    finally:
        page.close()
