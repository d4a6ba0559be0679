"""An operator ends a session: the person at the console sees why, at once, even when the
operator asked another instance than the one holding the console's tunnel."""
import pytest

pytestmark = pytest.mark.e2e


def test_a_console_closed_on_another_instance_tells_the_browser_why(twin_services, vnc_target,
                                                                    page):
    a, b = twin_services
    reply = b.create(vnc_target, user="erin")           # the page and its tunnel are on b
    page.goto(reply["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
    mine = a.session(reply["id"])                       # b's report reaches a's listing
    assert mine["user"] == "erin" and mine["tunnel"]["instance"] == "b"
    assert "HeadlessChrome" in mine["tunnel"]["user_agent"]

    assert a.delete(reply["id"])["state"] == "closed"
    # Well before the 10 s recheck of all live consoles: the look for closes did it.
    page.locator("body[data-error]").wait_for(state="attached", timeout=5000)
    assert page.evaluate("window.guacbridge.error.code") == 0x020B
    text = page.locator("body").inner_text()
    assert "The console session has ended" in text and "closed by API key tests" in text
    events = a.api("GET", f"/api/v1/consoles/{reply['id']}/events").json()["events"]
    consumed = next(e for e in events if e["kind"] == "consumed")
    assert consumed["data"]["by"] == "page" and "HeadlessChrome" in consumed["data"]["user_agent"]
