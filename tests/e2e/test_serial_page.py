"""A serial console over IPMI Serial-over-LAN in Chromium: ipmi_sim's SOL is wired to a
local shell; a command typed into the console page runs there and its output is drawn on
the page's terminal (and kept for ``GET /api/v1/consoles/{id}/output``)."""
import pathlib
import secrets
import time

import pytest

pytestmark = pytest.mark.e2e


def test_a_command_typed_into_a_sol_console_page_runs_and_its_output_shows(
        service, bmc_sol, page, artifacts):
    marker = pathlib.Path("/tmp") / f"sol-{secrets.token_hex(3)}"     # short: it is drawn
    reply = service.create({"protocol": "serial", "line": "ipmi-sol",
                            "hostname": "127.0.0.1", "port": bmc_sol.port,
                            "username": bmc_sol.username, "password": bmc_sol.password,
                            "font-size": 14})
    page.goto(reply["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=20000)
    page.wait_for_timeout(1000)
    page.keyboard.type(f"echo sol-$((6*7)); touch {marker}; uname -s", delay=15)
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 15
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists()                       # it ran on the server's serial port
    marker.unlink()
    shown = ""
    while "sol-42\r\n" not in shown and time.monotonic() < deadline:
        r = service.api("GET", f"/api/v1/consoles/{reply['id']}/output")
        assert r.status_code == 200, r.text
        shown = r.json()["output"]
        time.sleep(0.2)
    assert "sol-42\r\n" in shown                 # its output came back to the terminal
    page.wait_for_timeout(500)
    canvas = page.locator("#display canvas").first
    lit = page.evaluate("""() => {
        let n = 0;
        for (const c of document.querySelectorAll('#display canvas')) {
            if (!c.width || !c.height) continue;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 300) n++;
        }
        return n; }""")
    assert canvas.count() and lit > 200          # the terminal drew text
    page.screenshot(path=str(artifacts / "serial-sol.png"),
                    clip={"x": 0, "y": 0, "width": 640, "height": 200})
    assert bmc_sol.password not in service.log_text()
