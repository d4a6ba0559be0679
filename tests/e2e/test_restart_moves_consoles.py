"""Restarting without dropping consoles: a console is open in Chromium on instance A; a new
instance B comes up on the same port (SO_REUSEPORT) with the same MariaDB grant store; A gets
SIGTERM. The page moves to B with its reconnect secret, not a token, and the desktop answers
the keyboard again, while A exits within its drain time."""
import os
import signal
import subprocess
import time
import uuid

import pytest

from guacbridge.demo import free_port
from guacbridge.keyring import new_key
from guacbridge.store.mysql import MysqlGrantStore
from service_fixtures import start_service

pytestmark = pytest.mark.e2e
DRAIN_SECONDS = 30


@pytest.fixture
def shared_store(mariadb):
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    MysqlGrantStore(url).create_tables()
    return url


def test_sigterm_moves_a_live_console_to_the_next_instance(guacd, vnc_target, shared_store,
                                                           page, tmp_path, artifacts):
    port = free_port()
    env = {"GUACBRIDGE_MYSQL_URL": shared_store, "GUACBRIDGE_SECRET_KEYS": new_key("shared"),
           "GUACBRIDGE_REUSE_PORT": "true",
           "GUACBRIDGE_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    old = start_service(tmp_path / "a", f"{guacd.host}:{guacd.port}", port=port, **env)
    new = None
    try:
        reply = old.create(vnc_target, user="alice")
        tunnels = []
        page.on("websocket", lambda ws: tunnels.append(ws.url))
        page.goto(reply["url"])
        page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
        assert f"console {reply['id']}: tunnel up" in old.log_text()

        new = start_service(tmp_path / "b", f"{guacd.host}:{guacd.port}", port=port, **env)
        os.kill(old.process.pid, signal.SIGTERM)
        try:
            assert old.process.wait(DRAIN_SECONDS) == 0        # it exited within the drain
        except subprocess.TimeoutExpired:
            pytest.fail("the old instance was still draining after its drain time")
        page.wait_for_function("() => window.guacbridge.reconnects === 1"
                               " && window.guacbridge.state === 3", timeout=15000)
        assert page.evaluate("window.guacbridge.error") is None
        # The page left on the notice; A did not have to close it at the end of the drain.
        assert "closed the tunnels that had not moved" not in old.log_text()
        assert f"console {reply['id']}: tunnel up" in new.log_text()     # B serves it now
        assert len(tunnels) == 2
        assert all("session=" in url and "token=" not in url for url in tunnels), tunnels
        assert reply["websocket"]["token"] not in " ".join(tunnels)

        marker = tmp_path / "typed-after-the-restart"       # the desktop works on B
        box = page.locator("#display").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
        page.keyboard.type(f"touch {marker}", delay=20)
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        page.screenshot(path=str(artifacts / "after-restart.png"))
        assert marker.exists(), "a command typed after the restart did not run"
    finally:
        old.stop()
        if new is not None:
            new.stop()


def test_a_plain_restart_of_the_only_instance_keeps_the_console(guacd, vnc_target, page,
                                                               tmp_path):
    """systemctl restart: the old process leaves, a new one with the same SQLite store comes
    up on the same port a moment later, and the page gets back in by itself."""
    port = free_port()
    first = start_service(tmp_path / "a", f"{guacd.host}:{guacd.port}", port=port)
    second = None
    try:
        reply = first.create(vnc_target)
        page.goto(reply["url"])
        page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
        os.kill(first.process.pid, signal.SIGTERM)
        assert first.process.wait(DRAIN_SECONDS) == 0
        page.locator("body[data-reconnecting]").wait_for(state="attached", timeout=10000)
        second = start_service(tmp_path / "a", f"{guacd.host}:{guacd.port}", port=port)
        page.wait_for_function("() => window.guacbridge.state === 3"
                               " && window.guacbridge.reconnects === 1", timeout=20000)
        assert f"console {reply['id']}: tunnel up" in second.log_text()
    finally:
        first.stop()
        if second is not None:
            second.stop()
