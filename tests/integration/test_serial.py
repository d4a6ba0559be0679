"""IPMI Serial-over-LAN consoles on real parts: OpenIPMI's ipmi_sim with its SOL wired to a
local shell, guacbridge's serial bridge, guacd 1.3.0's telnet terminal. What is typed into
the tunnel runs on the "server" and its output comes back as the terminal's drawing and as
``GET /api/v1/consoles/{id}/output``; a refused login, a busy SOL and a console that is no
serial one are answered in words, never with the BMC's password."""
import asyncio
import time

import pytest

from guacbridge import protocol
from guacbridge.status import Status

pytestmark = pytest.mark.integration
NODE = {"agent": "bmc", "server": "node-7"}
ENTER = 0xFF0D


@pytest.fixture(scope="module")
def sol_service(guacd, bmc_sol, tmp_path_factory):
    from service_fixtures import start_service
    workdir = tmp_path_factory.mktemp("sol-service")
    conf = workdir / "guacbridge.toml"
    conf.write_text(
        '[agents.bmc.servers.node-7]\nvendor = "ipmi-sol"\naddress = "127.0.0.1"\n'
        f'port = {bmc_sol.port}\nusername = "{bmc_sol.username}"\n'
        f'password = "{bmc_sol.password}"\n\n'
        '[agents.bmc.servers.node-8]\nvendor = "ipmi-sol"\naddress = "127.0.0.1"\n'
        f'port = {bmc_sol.port}\nusername = "{bmc_sol.username}"\npassword = "not-it"\n')
    service = start_service(workdir, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf))
    yield service
    service.stop()


def typed(t, text: str) -> None:
    for char in text:
        for pressed in (1, 0):
            t.send(protocol.encode("key", ord(char), pressed))
    for pressed in (1, 0):
        t.send(protocol.encode("key", ENTER, pressed))


def output(service, console_id, **query):
    r = service.api("GET", f"/api/v1/consoles/{console_id}/output", params=query)
    return r.status_code, r.json()


def wait_for_output(service, console_id, wanted, timeout=15.0, **query):
    deadline = time.monotonic() + timeout
    while True:
        status, body = output(service, console_id, **query)
        assert status == 200, body
        if wanted in body["output"] or time.monotonic() > deadline:
            return body["output"]
        time.sleep(0.2)


def open_console(service, target):
    r = service.api("POST", "/api/v1/consoles", json={"target": target})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_command_typed_into_a_sol_console_runs_and_its_output_is_kept(sol_service,
                                                                         bmc_sol, tunnel):
    reply = open_console(sol_service, NODE)
    assert reply["target"]["protocol"] == "serial"
    assert output(sol_service, reply["id"]) == (200, {"result": True, "details": None,
                                                      "id": reply["id"], "output": ""})

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync", timeout=20)
            await t.drain(1)
            typed(t, "echo sol-$((6*7))")
            await t.drain(1)
            typed(t, "echo second-$((2+3))")
            await t.drain(1)
            # read while the tunnel is open: a console without a page ends with its tunnel
            shown = await asyncio.to_thread(wait_for_output, sol_service, reply["id"],
                                            "second-5")
            last = await asyncio.to_thread(output, sol_service, reply["id"], length=2)
            return t.error, shown, last[1]["output"]
    error, shown, last = asyncio.run(scenario())
    assert error is None
    assert "sol-42" in shown and "second-5" in shown
    assert "second-5" in last and "sol-42" not in last      # the last two lines only
    assert bmc_sol.password not in sol_service.log_text()
    r = sol_service.api("DELETE", f"/api/v1/consoles/{reply['id']}")
    assert r.status_code == 200
    status, body = output(sol_service, reply["id"])
    assert status == 409 and "kept only while it lives" in body["details"]


def test_a_refused_bmc_login_is_reported_without_the_password(sol_service, tunnel):
    reply = open_console(sol_service, {"agent": "bmc", "server": "node-8"})

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing(timeout=30)
    status, message, _ = asyncio.run(scenario())
    assert status == Status.CLIENT_FORBIDDEN
    assert "refused Serial-over-LAN" in message and "not-it" not in message
    assert "not-it" not in sol_service.log_text()


def test_a_second_console_on_a_busy_sol_is_told_so(sol_service, tunnel):
    first, second = open_console(sol_service, NODE), open_console(sol_service, NODE)

    async def scenario():
        async with tunnel(first) as t:
            await t.until("sync", timeout=20)
            async with tunnel(second) as t2:
                return await t2.closing(timeout=30)
    status, message, _ = asyncio.run(scenario())
    assert status == Status.UPSTREAM_NOT_FOUND and "in use by another console" in message


def test_the_output_of_a_console_that_is_not_serial_or_not_there(sol_service, vnc_target):
    status, body = output(sol_service, "00000000-0000-0000-0000-000000000000")
    assert status == 404
    reply = open_console(sol_service, vnc_target)
    status, body = output(sol_service, reply["id"])
    assert status == 409 and "only serial consoles keep their output" in body["details"]


def test_a_reconnect_gets_the_same_serial_line_and_a_viewer_joins_its_terminal(
        sol_service, tunnel):
    from test_reconnect_secrets import page_session
    from test_shares import join, share, viewer_tunnel
    from guacbridge.sessions import SECRET_OPCODE
    reply = open_console(sol_service, NODE)
    secret = page_session(sol_service, reply)

    async def first():
        async with tunnel(reply, console=reply["id"], session=secret) as t:
            seen = await t.until("sync", timeout=20)
            await t.drain(1)
            typed(t, "X=kept-$((3*3))")
            await t.drain(1)
            return seen[SECRET_OPCODE][0][0]
    secret = asyncio.run(first())
    viewer_secret = join(sol_service, share(sol_service, reply["id"], mode="view",
                                            ttl=60)).json()["session"]

    async def again():     # the page's reconnect: a new guacd connection, a new bridge
        async with tunnel(reply, console=reply["id"], session=secret) as owner:
            await owner.until("sync", timeout=20)
            async with viewer_tunnel(sol_service, reply["id"], viewer_secret) as viewer:
                await viewer.until("sync", timeout=20)
                typed(owner, "echo again-$X-shared")
                seen = await viewer.until("sync", timeout=10)
                await viewer.drain(1)
                shown = await asyncio.to_thread(wait_for_output, sol_service, reply["id"],
                                                "again-kept-9-shared")
                return owner.error, viewer.error, seen, shown
    owner_error, viewer_error, seen, shown = asyncio.run(again())
    assert owner_error is None and viewer_error is None   # the viewer opened no second SOL
    assert "img" in seen or "png" in seen                  # the terminal, drawn for the viewer
    assert "again-kept-9-shared" in shown                  # the same shell as before
