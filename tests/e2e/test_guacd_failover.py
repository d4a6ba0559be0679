"""A person at the console while the guacd carrying it dies: Chromium shows the upstream
error, reconnects on its own, and the console comes back through the other guacd."""
import os
import signal

import pytest

pytestmark = pytest.mark.e2e


def guacd_view(service) -> dict[int, dict]:
    body = service.api("GET", "/readyz", key=None).json()
    return {int(g["address"].rsplit(":", 1)[1]): g for g in body["guacd"]}


def connected(page, timeout_ms=20000) -> None:
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=timeout_ms)
    page.locator("#status").wait_for(state="hidden", timeout=timeout_ms)


def test_the_console_page_comes_back_through_the_other_guacd_when_its_guacd_dies(
        two_guacd, pooled_service, vnc_target, page, artifacts):
    reply = pooled_service.create(vnc_target)
    page.goto(reply["url"])
    connected(page)
    view = guacd_view(pooled_service)
    victim, survivor = sorted(two_guacd, key=lambda g: -view[g.port]["live_tunnels"])
    assert view[victim.port]["live_tunnels"] == 1 and view[survivor.port]["live_tunnels"] == 0

    os.kill(victim.part.pid, signal.SIGKILL)
    victim.part.process.wait(5)
    page.locator("body[data-reconnecting]").wait_for(state="attached", timeout=20000)
    status = page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts / "guacd-died-reconnecting.png"))
    connected(page)

    assert "Reconnecting in" in status
    assert page.evaluate("window.guacbridge.reconnects") == 1
    view = guacd_view(pooled_service)
    assert view[victim.port]["up"] is False
    assert view[survivor.port] == {"address": f"{survivor.host}:{survivor.port}", "up": True,
                                   "live_tunnels": 1}
