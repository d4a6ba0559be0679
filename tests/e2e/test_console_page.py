"""A person at the console: Chromium opens the URL from the API, sees the desktop, types a
command into the remote xterm, and the command runs on the machine."""
import time

import pytest

from screens import COUNT_LIT_PIXELS

pytestmark = pytest.mark.e2e


def poll(page, script: str, done, timeout: float = 5.0):
    """Evaluate *script* until done(value) or the timeout; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if done(value) or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(100)


def wait_state(page, state: int, timeout_ms: int = 15000) -> None:
    page.locator(f"body[data-state='{state}']").wait_for(state="attached", timeout=timeout_ms)


def test_the_console_url_shows_the_desktop_and_typing_runs_a_command(service, vnc_target,
                                                                     page, tmp_path):
    marker = tmp_path / "typed-in-chromium"
    reply = service.create(vnc_target, user="alice")
    started = time.monotonic()
    page.goto(reply["url"])
    wait_state(page, 3)
    connected_after = time.monotonic() - started
    assert "#token" not in page.url            # the one-time token left the address bar

    # The desktop gets drawn: the display takes Xvnc's geometry and its default layer fills
    # with non-black pixels. Display updates are applied asynchronously, so poll.
    size = poll(page, "() => [window.guacbridge.display.getWidth(),"
                      " window.guacbridge.display.getHeight()]", lambda v: v[0] > 0)
    assert size == [1024, 768]                 # Xvnc's geometry reached the browser
    lit = poll(page, COUNT_LIT_PIXELS, lambda v: v > 100)
    assert lit > 100

    box = page.locator(".display, #display").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.keyboard.type(f"touch {marker}", delay=20)
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert marker.exists(), "the typed command did not run in the remote xterm"
    assert connected_after < 10


def test_opening_the_same_url_again_says_the_link_was_used(service, vnc_target, page, browser):
    reply = service.create(vnc_target)
    page.goto(reply["url"])
    wait_state(page, 3)
    other = browser.new_context().new_page()
    other.goto(reply["url"])
    other.locator("body[data-error]").wait_for(state="attached", timeout=10000)
    assert other.evaluate("window.guacbridge.error.code") == 0x0301
    assert "already been used" in other.locator("body").inner_text()
    other.context.close()


def test_a_page_without_a_token_explains_itself(service, page):
    reply = service.create({"agent": "static", "protocol": "vnc", "hostname": "127.0.0.1"})
    page.goto(reply["url"].split("#")[0])
    assert "needs a console link with a token" in page.locator("body").inner_text()
