"""The console page's Ctrl-Alt-Shift menu and the things that keep a console alive, in
Chromium on the real stack (guacbridge → guacd 1.3.0 → Xvnc)."""
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e
# The 1024x768 desktop shown at 100 % in the middle of a 1280x800 page.
ORIGIN = ((1280 - 1024) / 2, (800 - 768) / 2)


@pytest.fixture
def page(clipboard_page):
    return clipboard_page


def target(desktop):
    return {"agent": "static", "protocol": "vnc", "hostname": desktop.host,
            "port": desktop.port, "password": desktop.password}


def open_console(page, url):
    page.goto(url)
    wait_connected(page)


def wait_connected(page, timeout_ms=15000):
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=timeout_ms)
    page.locator("#status").wait_for(state="hidden", timeout=timeout_ms)


def point_at(page, x, y):
    """Move the remote pointer to desktop pixel (x, y): twm gives that window the focus."""
    page.mouse.move(ORIGIN[0] + x, ORIGIN[1] + y)
    page.wait_for_timeout(150)


def focus_keylog(page, keylog):
    """Point at xev's window until it has the focus (it reports a key typed there)."""
    x, y, w, h = keylog.geometry
    for _ in range(10):
        point_at(page, x + w // 2, y + h // 2)
        page.keyboard.press("a")
        if "a" in keylog.wait_for(["a"], timeout=1):
            return


def toggle_menu(page):
    page.keyboard.down("Control")
    page.keyboard.down("Alt")
    page.keyboard.down("Shift")
    page.keyboard.up("Shift")
    page.keyboard.up("Alt")
    page.keyboard.up("Control")


def wait_for_file(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.exists()


def test_ctrl_alt_shift_opens_and_closes_the_menu(service, vnc_desktop, page, artifacts):
    open_console(page, service.create(target(vnc_desktop))["url"])
    assert page.locator("#menu").is_hidden()
    toggle_menu(page)
    page.locator("#menu").wait_for(state="visible")
    assert page.locator("#menu :focus").count() == 1        # keyboard-navigable from here
    assert page.locator("#time-left").inner_text().startswith("1:59:")
    page.screenshot(path=str(artifacts / "menu.png"))
    toggle_menu(page)
    page.locator("#menu").wait_for(state="hidden")
    page.locator("#menu-handle").click()                      # the handle, for touch screens
    page.locator("#menu").wait_for(state="visible")
    page.keyboard.press("Escape")
    page.locator("#menu").wait_for(state="hidden")


def test_text_input_types_into_the_remote_xterm(service, vnc_desktop, page, tmp_path):
    marker = tmp_path / "from-text-input"
    open_console(page, service.create(target(vnc_desktop))["url"])
    point_at(page, 200, 150)                                  # the xterm
    toggle_menu(page)
    page.locator("input[name=input][value=text]").check()
    page.keyboard.press("Escape")
    field = page.locator("#text-field")
    field.focus()
    field.type(f"touch {marker}", delay=10)
    field.press("Enter")
    assert wait_for_file(marker), "text typed in the text input did not run"
    assert field.input_value() == ""


def test_on_screen_keyboard_clicks_type_into_the_remote_xterm(service, vnc_desktop, page,
                                                             artifacts):
    marker = vnc_desktop.workdir / "osk"
    marker.unlink(missing_ok=True)
    open_console(page, service.create(target(vnc_desktop))["url"])
    point_at(page, 200, 150)
    page.evaluate("localStorage.setItem('guacbridge-prefs', '{}')")
    toggle_menu(page)
    page.locator("#layout").select_option("en-us")
    page.locator("input[name=input][value=osk]").check()
    page.keyboard.press("Escape")
    keys = {"t": "k1-4", "o": "k1-8", "u": "k1-6", "c": "k3-2", "h": "k2-5", "s": "k2-1",
            "k": "k2-7", " ": "space"}
    for char in "touch osk":
        page.locator(f".guac-keyboard-key-{keys[char]}").click()
    page.screenshot(path=str(artifacts / "on-screen-keyboard.png"))
    page.locator(".guac-keyboard-key-return").click()
    assert wait_for_file(marker), "the on-screen keyboard's keys did not reach the xterm"


def test_key_combination_buttons_reach_the_x_server(service, keylog_desktop, page):
    desktop, keylog = keylog_desktop
    open_console(page, service.create(target(desktop))["url"])
    focus_keylog(page, keylog)
    toggle_menu(page)
    for button in ("Ctrl-Alt-Del", "Alt-Tab", "Super", "Print Screen"):
        page.get_by_role("button", name=button, exact=True).click()
    page.locator("#fkey").select_option("5")
    page.locator("#send-fkey").click()
    expected = ["Control_L", "Alt_L", "Delete", "Alt_L", "Tab", "Super_L", "Print",
                "Control_L", "Alt_L", "F5"]
    seen = keylog.wait_for(expected)
    assert _in_order(seen, expected), seen
    # Ctrl-Alt-End from the physical keyboard arrives as Ctrl-Alt-Del.
    page.keyboard.press("Escape")
    x, y, w, h = keylog.geometry
    point_at(page, x + w // 2, y + h // 2)
    page.keyboard.press("Control+Alt+End")
    seen = keylog.wait_for(expected + ["Control_L", "Alt_L", "Delete"])
    assert _in_order(seen, expected + ["Control_L", "Alt_L", "Delete"]), seen
    assert "End" not in seen
    toggle_menu(page)
    page.get_by_role("button", name="Ctrl-Alt-Backspace", exact=True).click()
    seen = keylog.wait_for(expected + ["Control_L", "Alt_L", "BackSpace"])
    assert _in_order(seen, ["Control_L", "Alt_L", "BackSpace"]), seen


def _in_order(seen, names):
    it = iter(seen)
    return all(name in it for name in names)


def xclip(desktop, *args, text=None):
    return subprocess.run(["xclip", "-selection", "clipboard", *args],
                          env={**os.environ, **desktop.env}, input=text, text=True,
                          stdout=subprocess.PIPE if text is None else subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=10).stdout


def test_clipboard_round_trip_with_the_remote_side(service, vnc_desktop, page):
    open_console(page, service.create(target(vnc_desktop))["url"])
    xclip(vnc_desktop, "-i", text="copied on the server")
    field = page.locator("#clipboard")
    deadline = time.monotonic() + 10
    while field.input_value() != "copied on the server" and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert field.input_value() == "copied on the server"

    toggle_menu(page)
    field.fill("typed in the browser")
    deadline = time.monotonic() + 10
    remote = ""
    while remote != "typed in the browser" and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        remote = xclip(vnc_desktop, "-o")
    assert remote == "typed in the browser"


def test_the_countdown_warns_and_extend_moves_the_deadline(service, vnc_desktop, page):
    reply = service.create(target(vnc_desktop), max_duration=200)
    open_console(page, reply["url"])
    banner = page.locator("#banner")
    banner.wait_for(state="visible")
    assert "The session ends in 3:" in banner.inner_text()
    before = service.get(reply["id"])["deadline"]
    page.locator("#banner-extend").click()
    banner.wait_for(state="hidden")
    after = service.get(reply["id"])["deadline"]
    assert _seconds(after) - _seconds(before) == 1800
    toggle_menu(page)
    assert page.locator("#time-left").inner_text().startswith("3")   # 33:xx left


def _seconds(iso):
    import datetime
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_close_session_ends_the_console_for_good(service, vnc_desktop, page):
    reply = service.create(target(vnc_desktop))
    open_console(page, reply["url"])
    toggle_menu(page)
    close = page.locator("#close-session")
    close.click()
    assert "Click again" in close.inner_text()
    close.click()
    page.get_by_text("You closed the session.").wait_for()
    shown = service.get(reply["id"])
    assert shown["state"] == "closed" and shown["close_reason"] == "closed by the user"
    page.reload()
    page.get_by_text("needs a console link").wait_for()


def test_a_dropped_network_reconnects_without_the_token(service, vnc_desktop, page, proxy,
                                                       browser, artifacts):
    reply = service.create(target(vnc_desktop))
    open_console(page, proxy.url(reply["url"]))
    proxy.cut()
    page.locator("body[data-reconnecting]").wait_for(state="attached", timeout=20000)
    assert "Reconnecting in" in page.locator("#status").inner_text()
    page.screenshot(path=str(artifacts / "reconnecting.png"))
    wait_connected(page, timeout_ms=20000)
    assert page.evaluate("window.guacbridge.reconnects") == 1
    tunnels = [r for r in proxy.requests if r.startswith("GET /tunnel")]
    assert len(tunnels) == 2
    assert all("session=" in r and "token=" not in r for r in tunnels), tunnels
    assert reply["websocket"]["token"] not in " ".join(proxy.requests)

    other = browser.new_context().new_page()           # someone else with the old URL
    other.goto(reply["url"])
    other.locator("body[data-error]").wait_for(state="attached")
    assert "already been used" in other.locator("#status").inner_text()
    other.context.close()


def test_changing_the_time_zone_reconnects_with_the_same_session(service, vnc_desktop, page):
    reply = service.create(target(vnc_desktop))
    open_console(page, reply["url"])
    toggle_menu(page)
    page.locator("#timezone").select_option("Asia/Tokyo")
    deadline = time.monotonic() + 15
    while page.evaluate("window.guacbridge.reconnects") < 1 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    wait_connected(page)
    assert page.evaluate("window.guacbridge.prefs.timezone") == "Asia/Tokyo"
    assert service.get(reply["id"])["state"] == "active"


def test_zoom_buttons_scale_the_display(service, vnc_desktop, page):
    open_console(page, service.create(target(vnc_desktop))["url"])
    toggle_menu(page)
    page.locator("#zoom-in").click()
    assert page.evaluate("window.guacbridge.display.getScale()") == 1.1
    assert page.locator("#zoom-level").inner_text() == "110 %"
    page.locator("#zoom-fit").click()
    assert page.evaluate("window.guacbridge.display.getScale()") == 1
