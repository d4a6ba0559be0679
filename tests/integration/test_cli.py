"""The commands a newcomer and an operator type: demo, console create."""
import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from guacbridge.demo import free_port

pytestmark = pytest.mark.integration
GUACBRIDGE = [sys.executable, "-m", "guacbridge.cli"]


def reply_for(url: str) -> dict:
    """The parts of an API reply the tunnel fixture needs, rebuilt from a console URL."""
    m = re.match(r"http://([\d.]+):(\d+)/console/[0-9a-f-]{36}#token=([\w-]+)$", url)
    assert m, url
    return {"websocket": {"host": m[1], "port": int(m[2]), "path": "/tunnel", "secure": False,
                          "token": m[3], "extra": None}}


def desktop_comes_up(tunnel, url: str) -> bool:
    async def scenario():
        async with tunnel(reply_for(url)) as t:
            return "sync" in await t.until("sync", timeout=15)
    return asyncio.run(scenario())


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_prints_a_console_url_that_shows_the_desktop(guacd, vnc_desktop, tunnel, tmp_path):
    # guacd and vnc_desktop are requested so a missing program fails (CI) or skips first.
    port = free_port()
    demo = subprocess.Popen(GUACBRIDGE + ["demo", "--listen", f"127.0.0.1:{port}", "--data-dir",
                                          str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("--password-file" in l for l in lines):
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
        output = "".join(lines)
        url = re.search(r"(http://\S+/console/\S+#token=\S+)", output)
        assert url, output
        assert desktop_comes_up(tunnel, url[1])
        assert second_use_is_refused(tunnel, url[1])

        # The printed command for another console works as printed.
        command = re.search(r"(guacbridge console create .*?--password-file \S+)",
                            output.replace("\\\n", " "), re.S)[1]
        argv = GUACBRIDGE + shlex.split(command)[1:]
        second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0, second.stderr
        assert desktop_comes_up(tunnel, second.stdout.strip())
        password_file = shlex.split(command)[-1]
        assert oct(os.stat(password_file).st_mode & 0o777) == "0o600"
        assert open(password_file).read() not in output        # printed nowhere
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(15)
    assert demo.returncode == 0
    assert not port_open(port)


def second_use_is_refused(tunnel, url: str) -> bool:
    async def scenario():
        async with tunnel(reply_for(url)) as t:
            status, _, _ = await t.closing()
            return status == 0x0301
    return asyncio.run(scenario())


def test_console_create_prints_a_working_url_and_reads_the_password_from_stdin(
        service, vnc_desktop, tunnel, tmp_path):
    data_dir = tmp_path / "data"
    out = subprocess.run(GUACBRIDGE + ["console", "create", "--data-dir", str(data_dir),
                                       "--public-url", "http://127.0.0.1:1", "--host",
                                       vnc_desktop.host, "--port", str(vnc_desktop.port),
                                       "--allow", f"{vnc_desktop.host}:{vnc_desktop.port}",
                                       "--password-file", "-", "--json"],
                         input=vnc_desktop.password + "\n", capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert vnc_desktop.password not in out.stdout
    assert '"url": "http://127.0.0.1:1/console/' in out.stdout


def test_console_create_explains_a_bad_target(tmp_path):
    out = subprocess.run(GUACBRIDGE + ["console", "create", "--data-dir", str(tmp_path),
                                       "--host", "bad host!", "--param", "colour=red"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "unknown parameter(s) for vnc: colour" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["console", "create"], ["probe"],
                                     ["initdb"], ["worker"], ["submit"], ["newkey"],
                                     ["rekey"]])
def test_every_command_has_help_with_an_example(command):
    out = subprocess.run(GUACBRIDGE + command + ["--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and "example:" in out.stdout and "guacbridge" in out.stdout
