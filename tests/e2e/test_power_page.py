"""The console page's Power section in Chromium, on the real stack: an oVirt VM (the engine
emulator, whose console ticket becomes a real Xvnc's password) opened with ``"power": true``
shows the section with the state and the agent's actions; an action asks first, then reaches
the engine as the SDK's call, and the console stays up through a reset. Without the right
there is no section."""
from __future__ import annotations

import subprocess

import pytest
from ovirt_emulator import Engine

from guacbridge import demo

pytestmark = pytest.mark.e2e
OVIRT = {"agent": "ovirt", "location": "ams1", "vm": "web-12"}


@pytest.fixture(scope="module")
def ovirt_console(guacd, tmp_path_factory):
    """A service with an oVirt engine whose VM web-12 is a real desktop."""
    from service_fixtures import start_service
    workdir = tmp_path_factory.mktemp("power-page")
    desktop = demo.start_desktop(workdir / "desktop", password="notticket")
    engine = Engine()
    engine.add_vm("web-12", address=desktop.host, port=desktop.port)

    def ticket_is_the_vnc_password(vm, value, expiry):
        (desktop.workdir / "passwd").write_bytes(subprocess.run(
            ["vncpasswd", "-f"], input=value.encode() + b"\n", capture_output=True,
            check=True).stdout)
    engine.on_ticket = ticket_is_the_vnc_password
    conf = workdir / "guacbridge.toml"
    conf.write_text(engine.agent_config())
    service = start_service(workdir / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf))
    yield service, engine
    service.stop()
    engine.stop()
    desktop.stop()


def open_menu(page, url):
    page.goto(url)
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
    page.locator("#status").wait_for(state="hidden", timeout=15000)
    page.locator("#menu-handle").click()
    page.locator("#menu").wait_for(state="visible")


def test_the_power_section_shows_the_state_and_an_action_reaches_the_engine_once_confirmed(
        ovirt_console, page, artifacts):
    service, engine = ovirt_console
    engine.power_calls.clear()
    open_menu(page, service.create(OVIRT, power=True)["url"])
    section = page.get_by_role("region", name="Power")
    section.wait_for(state="visible")
    assert section.get_by_role("status").inner_text() == "The server is on."
    buttons = section.locator("#power-actions button")
    buttons.first.wait_for()
    assert buttons.all_inner_texts() == ["Start", "Shut down", "Power off", "Reboot", "Reset"]
    assert section.get_by_role("button", name="Start").is_disabled()
    section.get_by_role("button", name="Reset", exact=True).click()
    question = page.get_by_role("alertdialog")
    question.wait_for(state="visible")
    assert question.locator("p").inner_text() == "Reset server web-12?"
    assert engine.power_calls == []                 # nothing happens before the answer
    section.screenshot(path=str(artifacts / "power.png"))
    question.get_by_role("button", name="Cancel").click()
    assert question.is_hidden() and engine.power_calls == []
    section.get_by_role("button", name="Reset", exact=True).click()
    question.get_by_role("button", name="Reset").click()
    page.locator("#power-status").filter(has_text="done").wait_for()
    assert engine.power_calls == [("web-12", "reset")]
    assert page.locator("body").get_attribute("data-state") == "3"    # still connected
    # A shutdown: the state follows, and Start is what the section offers first.
    section.get_by_role("button", name="Shut down").click()
    question.get_by_role("button", name="Shut down").click()
    section.get_by_role("status").filter(has_text="The server is off.").wait_for()
    assert section.get_by_role("button", name="Start").is_enabled()
    assert section.get_by_role("button", name="Reset", exact=True).is_disabled()
    assert engine.power_calls == [("web-12", "reset"), ("web-12", "shutdown")]
    events = service.api("GET", f"/api/v1/consoles/{page.url.split('/')[-1].split('#')[0]}"
                                "/events").json()["events"]
    assert [e["data"] for e in events if e["kind"] == "power"] == [
        {"action": "reset", "by": "the console page"},
        {"action": "shutdown", "by": "the console page"}]
    engine.vms[next(iter(engine.vms))]["status"] = "up"


def test_no_power_section_without_the_right(ovirt_console, page):
    service, engine = ovirt_console
    open_menu(page, service.create(OVIRT)["url"])
    page.get_by_role("region", name="Session").wait_for(state="visible")
    assert page.locator("#power-section").is_hidden()
    assert page.get_by_role("region", name="Power").count() == 0


def test_a_vm_that_is_off_opens_saying_so_and_start_brings_its_console_up(ovirt_console,
                                                                           page):
    service, engine = ovirt_console
    desktop_vm = next(iter(engine.vms.values()))
    vm = engine.add_vm("db-3", status="down", address=desktop_vm["address"],
                       port=desktop_vm["port"])
    refused = service.api("POST", "/api/v1/consoles",
                          json={"target": {**OVIRT, "vm": "db-3"}})
    assert refused.status_code == 409            # without the power right: as before
    engine.power_calls.clear()
    page.goto(service.create({**OVIRT, "vm": "db-3"}, power=True)["url"])
    page.locator("#status-text").filter(has_text="The server is off").wait_for()
    start = page.get_by_role("button", name="Start")
    start.wait_for()
    assert engine.power_calls == [] and vm["status"] == "down"
    start.click()
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
    page.locator("#status").wait_for(state="hidden", timeout=15000)
    assert engine.power_calls == [("db-3", "start")]
