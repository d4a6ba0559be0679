"""guacbridge.guacd and the probe command against real guacd 1.3.0 and Xvnc."""
import asyncio
import json
import socket
import subprocess
import sys

import pytest

from guacbridge import guacd as client
from guacbridge.demo import free_port
from guacbridge.guacd import Capabilities, GuacdError, Protocol

pytestmark = pytest.mark.integration


def vnc_params(desktop, **changes):
    return {"hostname": desktop.host, "port": str(desktop.port), "password": desktop.password,
            **changes}


async def first_frame(conn):
    """Read until the first sync (console up) or an error."""
    while True:
        for elements in await asyncio.wait_for(conn.instructions(), 10):
            if elements[0] in ("sync", "error"):
                return elements


def test_handshake_negotiates_the_version_and_the_desktop_comes_up(guacd, vnc_desktop):
    async def scenario():
        conn = await client.connect((guacd.host, guacd.port), "vnc", vnc_params(vnc_desktop),
                                   Capabilities(timezone="Europe/Berlin", name="alice"))
        try:
            return conn, await first_frame(conn)
        finally:
            conn.close()
    conn, frame = asyncio.run(scenario())
    assert conn.version is Protocol.VERSION_1_3_0   # guacd 1.3.0 offers it; we answer it
    assert conn.connection_id.startswith("$")
    assert frame[0] == "sync"
    assert conn.handshake_seconds < 2


def test_a_wrong_vnc_password_is_an_error_after_ready(guacd, vnc_desktop):
    async def scenario():
        conn = await client.connect((guacd.host, guacd.port), "vnc",
                                       vnc_params(vnc_desktop, password="wrong"), Capabilities())
        try:
            return await first_frame(conn)
        finally:
            conn.close()
    frame = asyncio.run(scenario())
    assert frame[0] == "error" and int(frame[2]) in (0x0207, 0x0301, 0x0203)


def test_an_unreachable_host_is_upstream_not_found(guacd):
    # A port bound but not listening refuses connections, and no other process can take it
    # while the test runs (a merely free port can be).
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))

    async def scenario():
        conn = await client.connect((guacd.host, guacd.port), "vnc",
                                    {"hostname": "127.0.0.1",
                                     "port": str(closed.getsockname()[1])}, Capabilities())
        try:
            return await first_frame(conn)
        finally:
            conn.close()
    with closed:
        frame = asyncio.run(scenario())
    assert frame[0] == "error" and int(frame[2]) == 0x0207


def test_guacd_not_listening_is_upstream_unavailable():
    with pytest.raises(GuacdError) as e:
        asyncio.run(client.connect(("127.0.0.1", free_port()), "vnc", {"hostname": "x"},
                                  Capabilities(), timeout=3))
    assert e.value.status == 0x0208 and "not reachable" in e.value.message


def test_an_unknown_protocol_ends_in_a_clear_error_not_a_hang(guacd):
    # guacd 1.3.0 logs the unknown protocol and goes silent; the handshake timeout ends it.
    with pytest.raises(GuacdError) as e:
        asyncio.run(client.connect(
            (guacd.host, guacd.port), "nosuchproto", {}, Capabilities(), timeout=2))
    assert e.value.status in (0x0202, 0x0203) and "guacd" in e.value.message


def run_probe(guacd, desktop, password):
    pw_file = desktop.workdir / f"probe-{password}.txt"
    pw_file.write_text(password + "\n")
    out = subprocess.run([sys.executable, "-m", "guacbridge.cli", "probe", "--guacd",
                          f"{guacd.host}:{guacd.port}", "--host", desktop.host, "--port",
                          str(desktop.port), "--password-file", str(pw_file)],
                         capture_output=True, text=True, timeout=30)
    return out.returncode, json.loads(out.stdout), out.stderr


def test_probe_reports_a_working_console_and_how_long_it_took(guacd, vnc_desktop):
    code, result, _ = run_probe(guacd, vnc_desktop, vnc_desktop.password)
    assert code == 0 and result["ok"] is True and result["message"] == "console up"
    assert 0 < result["ready_seconds"] <= result["first_frame_seconds"] < 5


def test_probe_reports_a_refused_login_without_the_password(guacd, vnc_desktop):
    code, result, stderr = run_probe(guacd, vnc_desktop, "badpass1")
    assert code == 1 and result["ok"] is False and result["status"] is not None
    assert "badpass1" not in json.dumps(result) + stderr
