"""An oVirt console follows its VM, in Chromium on the real stack: the engine emulator makes
each console ticket a real Xvnc's VNC password only for the ticket's few seconds (a
hypervisor's rule), and the page's connection is dropped the way a network drops it. The
page comes back by itself with its reconnect secret, not a new token, and guacbridge asks
the engine again at that connect: after the ticket expired the desktop is still there, a VM
migrated to another host is found there, a VM that was stopped is said to be in words, and
a colleague joining the console after the ticket expired sees the desktop."""
from __future__ import annotations

import re
import secrets
import time
import urllib.parse

import leaks
import pytest
from ovirt_emulator import Engine, vnc_login
from screens import COUNT_LIT_PIXELS

from guacbridge import demo

pytestmark = pytest.mark.e2e
TICKET_SECONDS = 3
UPSTREAM_NOT_FOUND = 0x0207


@pytest.fixture(scope="module")
def ovirt(guacd, tmp_path_factory):
    """A service whose oVirt agent asks for tickets that live TICKET_SECONDS."""
    from service_fixtures import start_service
    workdir = tmp_path_factory.mktemp("follow")
    engine = Engine()
    engine.on_ticket = lambda vm, value, expiry: leaks.remember(value)
    conf = workdir / "guacbridge.toml"
    conf.write_text(engine.agent_config(ticket_seconds=TICKET_SECONDS))
    service = start_service(workdir / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf))
    yield service, engine
    service.stop()
    engine.stop()


@pytest.fixture(scope="module")
def service(ovirt):
    """This module's service is the oVirt one (the cuttable ``proxy`` forwards to it)."""
    return ovirt[0]


# Where xev's window sits on each desktop (inside 800x600, clear of the xterm): keys that
# reach that desktop's X server are in its log, whatever its shell is doing.
KEYLOG = (620, 450, 170, 140)


@pytest.fixture
def hosts(tmp_path):
    """Hypervisors' consoles: Xvnc desktops of different sizes (told apart on sight), each
    with xev logging the keys its X server gets."""
    made = []

    def host(name: str, geometry: str) -> demo.Desktop:
        d = demo.start_desktop(tmp_path / name, password=secrets.token_hex(4),
                               geometry=geometry)
        leaks.remember(d.password)
        made.append(d)
        x, y, w, h = KEYLOG
        d.run("xev", ["stdbuf", "-oL", "xev", "-geometry", f"{w}x{h}+{x}+{y}", "-name",
                      "keylog", "-event", "keyboard"])
        return d
    yield host
    for d in made:
        d.stop()


def keys_on(desktop):
    """The keys *desktop*'s X server delivered to xev, in order."""
    text = (desktop.workdir / "xev.log").read_text(errors="replace")
    return re.findall(r"KeyPress event.*?\(keysym 0x[0-9a-f]+, (\w+)\)", text, re.S)


def vm_on(engine, desktop, name):
    """A running VM whose console is *desktop*, taking only the engine's live ticket."""
    vm = engine.add_vm(name, address=desktop.host, port=desktop.port)
    engine.enforce_tickets(vm, desktop.workdir / "passwd")
    return vm


def target(name):
    return {"agent": "ovirt", "location": "ams1", "vm": name}


def wait_connected(page, timeout_ms=20000):
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=timeout_ms)
    page.locator("#status").wait_for(state="hidden", timeout=timeout_ms)


def poll(page, script, done, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not done(value := page.evaluate(script)) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return value


def desktop_size(page):
    return poll(page, "() => [window.guacbridge.display.getWidth(),"
                      " window.guacbridge.display.getHeight()]", lambda v: v[0] > 0)


def expire_every_ticket(engine, desktop):
    """Until every ticket handed out so far has expired; the last one no longer opens the
    console (the ticket really was the password, and is not any more)."""
    engine.wait_expired(len(engine.tickets))
    assert not vnc_login(desktop.host, desktop.port, engine.tickets[-1])


def drop_and_wait_back(page, proxy):
    """A network drop; the page reconnects on its own."""
    proxy.cut()
    page.locator("body[data-reconnecting]").wait_for(state="attached", timeout=20000)
    wait_connected(page)


def key_reaches(page, desktop, key):
    """Point at xev's window on the page's desktop (twm focuses what is under the pointer)
    and press *key* until *desktop*'s X server delivers it; whether it did."""
    box = page.locator("#display").bounding_box()
    scale = box["width"] / page.evaluate("window.guacbridge.display.getWidth()")
    x, y, w, h = KEYLOG
    for _ in range(10):
        page.mouse.move(box["x"] + (x + w / 2) * scale, box["y"] + (y + h / 2) * scale)
        page.wait_for_timeout(150)
        page.keyboard.press(key)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            if key in keys_on(desktop):
                return True
            time.sleep(0.1)
    return False


def tunnel_queries(proxy):
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(line.split(" ")[1]).query)
            for line in proxy.requests if line.startswith("GET /tunnel")]


def events(service, console_id, kind):
    listed = service.api("GET", f"/api/v1/consoles/{console_id}/events").json()["events"]
    return [e["data"] for e in listed if e["kind"] == kind]


def test_a_page_reconnecting_after_its_ticket_expired_still_shows_the_desktop(
        ovirt, hosts, page, proxy, browser):
    service, engine = ovirt
    desktop = hosts("host-a", "1024x768")
    vm_on(engine, desktop, "web-12")
    reply = service.create(target("web-12"))
    page.goto(proxy.url(reply["url"]))
    wait_connected(page)
    assert desktop_size(page) == [1024, 768]
    expire_every_ticket(engine, desktop)

    drop_and_wait_back(page, proxy)
    assert page.evaluate("window.guacbridge.reconnects") == 1
    assert poll(page, COUNT_LIT_PIXELS, lambda v: v > 100) > 100
    assert key_reaches(page, desktop, "a"), "a key pressed after the reconnect got nowhere"
    # The same console, back with the page's secret: no new token, no new console.
    queries = tunnel_queries(proxy)
    assert len(queries) == 2 and all("session" in q and "token" not in q for q in queries)
    assert service.get(reply["id"])["state"] == "active"
    resolved = events(service, reply["id"], "target.resolved")
    assert len(resolved) == 2 and all(e["port"] == str(desktop.port) for e in resolved)
    assert not any(t in str(resolved) for t in engine.tickets)

    # A colleague who joins now, with every ticket expired again, sees the desktop too.
    expire_every_ticket(engine, desktop)
    link = service.api("POST", f"/api/v1/consoles/{reply['id']}/shares",
                       json={"mode": "view"})
    assert link.status_code == 201, link.text
    viewer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        viewer.goto(link.json()["url"])
        wait_connected(viewer)
        assert desktop_size(viewer) == [1024, 768]
        assert poll(viewer, COUNT_LIT_PIXELS, lambda v: v > 100) > 100
    finally:
        viewer.context.close()


def test_a_vm_migrated_between_connects_is_found_on_its_new_host(ovirt, hosts, page, proxy,
                                                                 artifacts):
    service, engine = ovirt
    old, new = hosts("host-a", "1024x768"), hosts("host-b", "800x600")
    vm = vm_on(engine, old, "db-3")
    reply = service.create(target("db-3"))
    page.goto(proxy.url(reply["url"]))
    wait_connected(page)
    assert desktop_size(page) == [1024, 768]

    engine.migrate(vm, new.host, new.port, new.workdir / "passwd")
    drop_and_wait_back(page, proxy)
    assert desktop_size(page) == [800, 600]            # the other host's desktop
    assert key_reaches(page, new, "b")
    assert "b" not in keys_on(old)
    assert [e["port"] for e in events(service, reply["id"], "target.resolved")] == [
        str(old.port), str(new.port)]
    page.screenshot(path=str(artifacts / "follow-migrated.png"))


def test_a_vm_stopped_between_connects_is_said_to_be_and_its_start_brings_it_back(
        ovirt, hosts, page, proxy, artifacts):
    service, engine = ovirt
    desktop = hosts("host-a", "1024x768")
    vm = vm_on(engine, desktop, "app-7")
    reply = service.create(target("app-7"))
    errors = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: errors.append(
        frame) if isinstance(frame, str) and frame.startswith("5.error,") else None))
    page.goto(proxy.url(reply["url"]))
    wait_connected(page)

    vm["status"] = "down"
    proxy.cut()
    words = "VM app-7 is not running (status down): start it and retry"
    status = page.locator("#status")
    status.filter(has_text=f"{words}. Reconnecting in").wait_for(timeout=20000)
    assert page.locator("body[data-reconnecting]").count() == 1     # it goes on trying
    # guacbridge's error instruction: the words, and the status the page retries on
    assert errors[-1] == f"5.error,{len(words)}.{words},3.{UPSTREAM_NOT_FOUND};", errors
    failed = events(service, reply["id"], "target.failed")
    assert failed and failed[-1] == {"status": 409, "details": words}
    status.screenshot(path=str(artifacts / "follow-vm-down.png"))

    vm["status"] = "up"                       # started again: the next retry gets in
    wait_connected(page)
    assert desktop_size(page) == [1024, 768]
    assert key_reaches(page, desktop, "c")
