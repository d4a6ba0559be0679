"""Sharing a console from its menu, in two Chromium contexts on the real stack: the owner
shares, a colleague opens the link and watches (or works along), the owner sees who is
watching and revokes the share, and the link works only once."""
import time

import pytest

from screens import COMPARE
from test_menu import ORIGIN, point_at, target, toggle_menu, wait_connected

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1280, "height": 800}
FLUSH = "() => new Promise((done) => window.guacbridge.display.flush(done))"
FLATTEN = "() => window.guacbridge.display.flatten().toDataURL('image/png')"
SESSION_CLOSED, CLIENT_UNAUTHORIZED = 0x020B, 0x0301



@pytest.fixture
def people(browser):
    """Browser contexts of their own: the owner, then colleagues."""
    made = []

    def person():
        ctx = browser.new_context(viewport=VIEWPORT)
        made.append(ctx)
        return ctx.new_page()
    yield person
    for ctx in made:
        ctx.close()


def focus_keylog(page, keylog, key: str = "a") -> None:
    """Put the pointer on xev's window (twm focuses what is under it) until it gets keys."""
    x, y, w, h = keylog.geometry
    for _ in range(10):
        point_at(page, x + w // 2, y + h // 2)
        page.keyboard.press(key)
        if key in keylog.wait_for([key], timeout=1):
            return
    raise AssertionError("xev's window never got the focus")


def share_from_menu(owner, mode_button: str) -> str:
    toggle_menu(owner)
    owner.get_by_role("button", name=mode_button, exact=True).click()
    link = owner.locator("#share-link")
    link.wait_for(state="visible")
    return link.input_value()


def wait_watching(owner, timeout: float = 12.0) -> None:
    owner.locator("#share-list li[data-state='watching']").wait_for(
        state="attached", timeout=timeout * 1000)


def open_share(viewer, url: str) -> None:
    viewer.goto(url)
    wait_connected(viewer)


def test_a_view_share_sees_the_owners_typing_and_its_keys_do_not_reach_the_server(
        service, keylog_desktop, people, artifacts):
    desktop, keylog = keylog_desktop
    owner = people()
    owner.goto(service.create(target(desktop))["url"])
    wait_connected(owner)
    focus_keylog(owner, keylog)

    url = share_from_menu(owner, "Share view-only")
    assert "#share=" in url
    viewer = people()
    open_share(viewer, url)
    assert viewer.evaluate("window.guacbridge.viewer") == "view"
    assert "#share" not in viewer.url
    wait_watching(owner)
    assert "watching now" in owner.locator("#share-list").inner_text()
    owner.screenshot(path=str(artifacts / "share-menu.png"))
    owner.keyboard.press("Escape")

    # The owner types into the xterm; the viewer's screen shows the same.
    point_at(owner, 200, 150)
    viewer.evaluate(FLUSH)
    before = viewer.evaluate(FLATTEN)
    owner.keyboard.type("echo watched-by-a-colleague", delay=20)
    owner.keyboard.press("Enter")
    owner.wait_for_timeout(1500)
    owner.evaluate(FLUSH)
    viewer.evaluate(FLUSH)
    seen_by_owner, seen_by_viewer = owner.evaluate(FLATTEN), viewer.evaluate(FLATTEN)
    # the typing showed
    assert viewer.evaluate(COMPARE, [before, seen_by_viewer])["differing"] > 100
    assert viewer.evaluate(COMPARE, [seen_by_owner, seen_by_viewer])["differing"] <= 16
    viewer.screenshot(path=str(artifacts / "share-viewer.png"))

    # The viewer's keys, even sent past the page straight into the tunnel, go nowhere.
    focus_keylog(owner, keylog, "b")
    x, y, w, h = keylog.geometry
    viewer.mouse.move(ORIGIN[0] + x + w // 2, ORIGIN[1] + y + h // 2)
    viewer.keyboard.press("q")
    viewer.evaluate("() => { const c = window.guacbridge.client;"
                    " c.sendKeyEvent(1, 0x77); c.sendKeyEvent(0, 0x77); }")     # "w"
    owner.wait_for_timeout(500)
    owner.keyboard.press("z")
    seen = keylog.wait_for(["z"])
    after_b = seen[len(seen) - 1 - seen[::-1].index("b"):]
    assert "z" in after_b and "q" not in after_b and "w" not in after_b, seen


def test_a_control_share_types_into_the_console_and_its_link_works_once(
        service, keylog_desktop, people):
    desktop, keylog = keylog_desktop
    owner = people()
    owner.goto(service.create(target(desktop))["url"])
    wait_connected(owner)
    focus_keylog(owner, keylog)
    url = share_from_menu(owner, "Share with control")
    owner.keyboard.press("Escape")

    viewer = people()
    open_share(viewer, url)
    assert viewer.evaluate("window.guacbridge.viewer") == "control"
    focus_keylog(viewer, keylog, "c")           # the colleague's keys reach the X server
    viewer.reload()                             # the same tab comes back without the link
    wait_connected(viewer)
    assert viewer.evaluate("window.guacbridge.viewer") == "control"
    focus_keylog(viewer, keylog, "d")

    again = people()
    again.goto(url)
    again.locator("body[data-error]").wait_for(state="attached", timeout=10000)
    assert again.evaluate("window.guacbridge.error.code") == CLIENT_UNAUTHORIZED
    assert "already been used" in again.locator("#status").inner_text()


def test_revoking_a_share_ends_the_viewers_console_with_a_clear_message(
        service, vnc_desktop, people, artifacts):
    owner = people()
    owner.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(owner)
    url = share_from_menu(owner, "Share view-only")
    viewer = people()
    open_share(viewer, url)
    wait_watching(owner)

    owner.locator("#share-list li[data-state='watching']").get_by_role(
        "button", name="Revoke").click()
    viewer.locator("body[data-error]").wait_for(state="attached", timeout=10000)
    assert viewer.evaluate("window.guacbridge.error.code") == SESSION_CLOSED
    status = viewer.locator("#status").inner_text()
    assert "The console's owner has stopped sharing it with you." in status
    viewer.screenshot(path=str(artifacts / "share-revoked.png"))
    owner.locator("#share-list li[data-state='revoked']").wait_for(state="attached",
                                                                   timeout=5000)
    # The owner's console goes on.
    time.sleep(0.5)
    assert owner.evaluate("window.guacbridge.state") == 3
