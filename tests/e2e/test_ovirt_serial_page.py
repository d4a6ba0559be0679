"""An oVirt VM's serial console in Chromium, on the real stack: the oVirt agent (the real SDK
against the engine emulator) answers the serial target, guacbridge opens the line through a
real sshd standing in for the engine's vmconsole proxy (it checks the VM id it is asked for
and runs a shell in place of the VM's serial port), and guacd 1.3.0 shows it as a terminal.
A command typed in the page runs there, and what it prints shows in the page."""
from __future__ import annotations

import time

import pytest
from ovirt_emulator import Engine

pytestmark = pytest.mark.e2e
SERIAL = {"agent": "ovirt", "location": "ams1", "vm": "web-12", "console": "serial"}

# Pixels of the console's whole display (every layer: a terminal draws on layer 1) that are
# clearly red: what the command typed below prints, red cells.
COUNT_RED = """() => {
    const canvas = window.guacbridge.display.flatten();
    if (!canvas.width || !canvas.height) return 0;
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let red = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 100 && d[i] > d[i+1] + 50
                                              && d[i] > d[i+2] + 50) red++;
    return red;
}"""


@pytest.fixture(scope="module")
def ovirt_serial(guacd, vmconsole_proxy, tmp_path_factory):
    """A service whose oVirt engine has VM web-12 with its serial console enabled, behind
    the stand-in proxy."""
    from service_fixtures import start_service
    workdir = tmp_path_factory.mktemp("ovirt-serial")
    engine = Engine()
    vm = engine.add_vm("web-12", serial=True)
    engine.add_vm("web-13", serial=True)           # the proxy does not offer it to our key
    with vmconsole_proxy["vms"].open("a") as f:
        f.write(f"{vm['id']} up\n")
    conf = workdir / "guacbridge.toml"
    conf.write_text(
        f'[vmconsole]\nkey_file = "{vmconsole_proxy["key"]}"\n'
        f'known_hosts = "{vmconsole_proxy["known_hosts"]}"\nuser = "{vmconsole_proxy["user"]}"\n'
        + engine.agent_config(vmconsole_host=vmconsole_proxy["host"],
                              vmconsole_port=vmconsole_proxy["port"]))
    service = start_service(workdir / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf))
    yield service, vm
    service.stop()
    engine.stop()


def red_cells(page, more_than: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        red = page.evaluate(COUNT_RED)
        if red > more_than or time.monotonic() > deadline:
            return red
        page.wait_for_timeout(200)


def test_a_command_typed_in_an_ovirt_serial_console_runs_on_the_vm_and_its_output_shows(
        ovirt_serial, vmconsole_proxy, page, artifacts):
    service, vm = ovirt_serial
    marker = vmconsole_proxy["home"] / "typed-on-the-serial-console"
    reply = service.create(SERIAL)
    assert reply["target"]["protocol"] == "serial"
    page.goto(reply["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=20000)
    page.wait_for_timeout(1500)                      # the stand-in's greeting and prompt
    assert red_cells(page, 0, timeout=0) == 0
    # The stand-in's shell runs in its home; short enough for the proxy's 80-column pty.
    page.keyboard.type(f"touch {marker.name}; printf '\\e[41m%400s\\e[m\\n' ''", delay=15)
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 15
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists()                           # the typed command ran at the far end
    assert red_cells(page, 2000) > 2000              # and what it printed is on the screen
    assert vmconsole_proxy["log"].read_text().splitlines()[-1] == f"connect --vm-id={vm['id']}"
    page.keyboard.type("echo hello from the serial console of web-12", delay=15)
    page.keyboard.press("Enter")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "ovirt-serial.png"),
                    clip={"x": 0, "y": 0, "width": 900, "height": 170})


def test_a_vm_the_proxy_does_not_offer_is_said_in_the_page_in_the_proxys_words(
        ovirt_serial, page):
    service, _ = ovirt_serial
    errors = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: errors.append(
        frame) if isinstance(frame, str) and frame.startswith("5.error,") else None))
    page.goto(service.create({**SERIAL, "vm": "web-13"})["url"])
    status = page.locator("#status")
    status.filter(has_text="offers no VM").wait_for(timeout=20000)
    assert "is unavailable" in status.inner_text()
    # guacbridge's error instruction: the words, and 0x0207, on which the page retries
    assert errors and "to guacbridge's key" in errors[-1] and errors[-1].endswith(",3.519;")
