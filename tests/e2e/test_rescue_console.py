"""The rescue console in Chromium on the real stack (guacbridge → guacd 1.3.0 → Xvnc): the
credentials dialog when guacd asks for a password, text typed as keystrokes from the menu,
and Guacamole's own notices as toasts."""
import json
import time

import pytest

from screens import COUNT_LIT_PIXELS

from test_menu import (focus_keylog, point_at, target, toggle_menu, wait_connected,
                       wait_for_file)

pytestmark = pytest.mark.e2e
CLIENT_UNAUTHORIZED = 0x0301


@pytest.fixture
def page(clipboard_page):
    return clipboard_page


def without_password(desktop):
    return {k: v for k, v in target(desktop).items() if k != "password"}


def lit_pixels(page, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lit = page.evaluate(COUNT_LIT_PIXELS)
        if lit > 100 or time.monotonic() > deadline:
            return lit
        page.wait_for_timeout(100)


def storage(page):
    return page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")


def test_a_console_without_its_password_asks_for_it_and_comes_up(service, vnc_desktop, page,
                                                                  artifacts):
    sent = []                                   # every HTTP request the page makes
    page.on("request", lambda r: sent.append(f"{r.url} {r.post_data or ''}"))
    page.goto(service.create(without_password(vnc_desktop))["url"])
    dialog = page.get_by_role("dialog", name="Sign in to the server")
    dialog.wait_for(state="visible", timeout=15000)
    password = dialog.get_by_label("Password")
    assert password.get_attribute("type") == "password"          # masked
    assert dialog.get_by_label("Username").count() == 0          # only what guacd asked for
    password.press_sequentially(vnc_desktop.password)          # typed, key by key
    dialog.screenshot(path=str(artifacts / "credentials.png"))
    password.press("Enter")                                     # Connect
    wait_connected(page)
    assert dialog.is_hidden()
    assert lit_pixels(page) > 100                                   # the desktop is drawn
    assert vnc_desktop.password not in storage(page)
    assert vnc_desktop.password not in service.log_text()
    assert sent and not any(vnc_desktop.password in request for request in sent)


def test_without_remember_a_reconnect_asks_again(service, vnc_desktop, page):
    page.goto(service.create(without_password(vnc_desktop))["url"])
    dialog = page.get_by_role("dialog", name="Sign in to the server")
    dialog.get_by_label("Password").fill(vnc_desktop.password)
    dialog.get_by_role("button", name="Connect").click()
    wait_connected(page)
    toggle_menu(page)
    page.locator("#timezone").select_option("Europe/Berlin")
    dialog.wait_for(state="visible", timeout=15000)
    assert dialog.get_by_label("Password").input_value() == ""


def test_remember_answers_again_after_a_reconnect_from_memory_only(service, vnc_desktop,
                                                                    page):
    page.goto(service.create(without_password(vnc_desktop))["url"])
    dialog = page.get_by_role("dialog", name="Sign in to the server")
    dialog.get_by_label("Password").fill(vnc_desktop.password)
    dialog.get_by_label("Remember for this session").check()
    dialog.get_by_role("button", name="Connect").click()
    wait_connected(page)
    toggle_menu(page)                      # a new handshake: guacd asks again
    page.locator("#timezone").select_option("Europe/Berlin")
    page.locator("body[data-state='3']").wait_for(state="detached", timeout=5000)
    wait_connected(page)
    assert page.evaluate("window.guacbridge.reconnects") == 1
    assert dialog.is_hidden()
    assert vnc_desktop.password not in storage(page)


def test_cancel_closes_the_console_and_says_why(service, vnc_desktop, page):
    page.goto(service.create(without_password(vnc_desktop))["url"])
    dialog = page.get_by_role("dialog", name="Sign in to the server")
    dialog.wait_for(state="visible", timeout=15000)
    dialog.get_by_role("button", name="Cancel").click()
    status = page.locator("#status-text")
    status.wait_for(state="visible")
    assert status.inner_text() == "The console was closed: you cancelled the sign-in."
    assert page.locator("#status-detail").inner_text() == \
        "The server asked for credentials the console was not given."
    assert page.evaluate("window.guacbridge.state") == 5          # DISCONNECTED


def test_prompt_false_shows_the_error_within_a_second(service, vnc_desktop, page):
    reply = service.create(without_password(vnc_desktop), prompt=False)
    page.goto(reply["url"])
    page.locator("body[data-state='1'], body[data-state='2']").wait_for(
        state="attached", timeout=15000)                       # connecting to guacd
    started = time.monotonic()
    page.locator(f"body[data-error='{CLIENT_UNAUTHORIZED}']").wait_for(
        state="attached", timeout=5000)
    assert time.monotonic() - started < 1.0
    assert page.get_by_role("dialog", name="Sign in to the server").is_hidden()
    detail = page.locator("#status").inner_text()
    assert "The server asks for credentials the console was not given (password)" in detail


def test_type_text_types_capitals_symbols_and_newline_exactly(service, vnc_desktop, page,
                                                               artifacts):
    marker = vnc_desktop.workdir / "typed"
    marker.unlink(missing_ok=True)
    page.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(page)
    page.evaluate("localStorage.setItem('guacbridge-prefs', '{}')")
    point_at(page, 200, 150)                                  # the xterm
    toggle_menu(page)
    page.get_by_label("Text to type").fill(f"echo 'A-z_~!@#' > {marker}\n")
    page.get_by_role("button", name="Type", exact=True).click()
    page.locator("#typetext-progress").wait_for(state="visible")
    page.locator("#typetext-section").screenshot(path=str(artifacts / "type-text.png"))
    assert wait_for_file(marker), "the typed command did not run"
    page.locator("body[data-typed]").wait_for(state="attached")
    assert marker.read_text() == "A-z_~!@#\n"
    assert page.locator("#typetext-status").inner_text().startswith("Typed ")


def test_stop_halfway_stops_typing(service, vnc_desktop, page):
    marker = vnc_desktop.workdir / "stopped"
    marker.unlink(missing_ok=True)
    page.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(page)
    point_at(page, 200, 150)
    toggle_menu(page)
    field = page.get_by_label("Text to type")
    field.fill("echo " + "y" * 300)
    page.get_by_role("button", name="Type", exact=True).click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Stop").click()
    page.locator("body[data-typed]").wait_for(state="attached")
    typed = int(page.locator("body").get_attribute("data-typed"))
    assert 5 < typed < 305
    assert page.locator("#typetext-status").inner_text() == \
        f"Stopped after {typed} of 305 characters."
    page.wait_for_timeout(500)                     # nothing more arrives after Stop
    field.fill(f" > {marker}\n")                   # ...and what did arrive, runs
    page.get_by_role("button", name="Type", exact=True).click()
    assert wait_for_file(marker)
    assert marker.read_text() == "y" * (typed - 5) + "\n"


def test_type_clipboard_types_the_browsers_clipboard(service, vnc_desktop, page):
    marker = vnc_desktop.workdir / "from-clipboard"
    marker.unlink(missing_ok=True)
    page.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(page)
    point_at(page, 200, 150)
    page.evaluate("(text) => navigator.clipboard.writeText(text)", f"touch {marker}\n")
    toggle_menu(page)
    page.get_by_role("button", name="Type clipboard").click()
    assert wait_for_file(marker), "the clipboard's text was not typed"


def test_a_viewer_joining_shows_the_owner_a_toast(service, vnc_desktop, page, artifacts):
    """guacd 1.5+ sends the owner `msg` (1 = joined, 2 = left); guacd 1.3.0 does not, so the
    instruction is handed to the page's tunnel as guacd would send it."""
    page.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(page)
    page.evaluate("guacbridge.tunnel.oninstruction('msg', ['1', '@a1b2', 'alice'])")
    toast = page.locator(".toast", has_text="alice joined the console.")
    toast.wait_for(state="visible")
    page.locator("#toasts").screenshot(path=str(artifacts / "toast.png"))
    page.evaluate("guacbridge.tunnel.oninstruction('msg', ['2', '@a1b2', 'alice'])")
    page.locator(".toast", has_text="alice left the console.").wait_for(state="visible")
    assert json.loads(page.evaluate("JSON.stringify(guacbridge.error)")) is None


def test_characters_outside_the_layout_go_as_unicode_keysyms(service, keylog_desktop, page):
    """xev on the desktop names what the X server got: the layout's characters as their
    keysyms, the others through Unicode keysyms, newline as Return and tab as Tab."""
    desktop, keylog = keylog_desktop
    page.goto(service.create(target(desktop))["url"])
    wait_connected(page)
    page.evaluate("localStorage.setItem('guacbridge-prefs', '{\"layout\": \"en-us\"}')")
    focus_keylog(page, keylog)
    toggle_menu(page)
    page.get_by_label("Text to type").fill("Q~é€\tZ\n")
    page.get_by_role("button", name="Type", exact=True).click()
    expected = ["Q", "asciitilde", "eacute", "U20AC", "Tab", "Z", "Return"]   # € as U+20AC
    seen = keylog.wait_for(expected)
    it = iter(seen)
    assert all(name in it for name in expected), " ".join(seen)


def test_a_long_text_is_typed_only_after_a_confirmation(service, vnc_desktop, page):
    page.goto(service.create(target(vnc_desktop))["url"])
    wait_connected(page)
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss()
    page.on("dialog", answer)
    toggle_menu(page)
    page.get_by_label("Text to type").fill("#" * 4001)
    page.get_by_role("button", name="Type", exact=True).click()
    page.locator("#typetext-status", has_text="Not typed.").wait_for()
    assert asked == ["Type 4001 characters into the console? This takes about 101 s."]
    assert page.locator("body[data-typed]").count() == 0
