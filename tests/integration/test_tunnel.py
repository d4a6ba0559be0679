"""The tunnel on real parts: guacbridge serve → guacd 1.3.0 → Xvnc, driven by a WebSocket
client that behaves like guacamole-common-js."""
import asyncio
import time

import pytest

from guacbridge import protocol

pytestmark = pytest.mark.integration


def test_first_message_is_the_tunnel_id_then_the_desktop_arrives(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            first = await t.next_message()
            elements = protocol.parse(first)
            assert elements[0] == "" and len(elements[1]) == 36     # 0.,36.<uuid>;
            seen = await t.until("sync")
            return seen
    seen = asyncio.run(scenario())
    assert "error" not in seen
    assert {"size", "img", "sync"} <= seen.keys()       # a frame was drawn


def test_a_ping_is_echoed_by_the_tunnel(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            ping = protocol.encode("", "ping", int(time.time() * 1000))
            t.send(ping)
            return ping, await t.wait_for_raw(ping)
    ping, echoed = asyncio.run(scenario())
    assert echoed == ping


def test_second_browser_with_same_url_is_refused(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as first:
            await first.until("sync")
            async with tunnel(reply) as second:
                return await second.closing()
    status, message, close = asyncio.run(scenario())
    assert status == 0x0301 and "already been used" in message
    assert close == (1008, "769")


def test_an_expired_link_is_refused(service, vnc_target, tunnel):
    reply = service.create(vnc_target, ttl=1)
    time.sleep(1.3)

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing()
    status, message, close = asyncio.run(scenario())
    assert status == 0x0301 and "expired" in message and close[1] == "769"


def test_the_extra_token_is_required_when_set(service, vnc_target, tunnel):
    reply = service.create(vnc_target, extra_token="from-the-portal")

    async def scenario():
        async with tunnel(reply, extra=None) as t:
            refused = await t.closing()
        async with tunnel(reply, extra="from-the-portal") as t:
            return refused, await t.until("sync")
    refused, seen = asyncio.run(scenario())
    assert refused[0] == 0x0301 and "extra token" in refused[1]
    assert "sync" in seen


def test_a_wrong_vnc_password_reaches_the_browser_as_a_guacamole_error(service, vnc_target,
                                                                         tunnel):
    reply = service.create({**vnc_target, "password": "wrong-pw"})

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing()
    status, message, close = asyncio.run(scenario())
    assert status in (0x0207, 0x0301, 0x0203), (status, message)
    assert close[1] == str(status)
    assert "wrong-pw" not in message
    assert service.get(reply["id"])["state"] == "closed"


def test_an_unreachable_console_gives_upstream_not_found(service, vnc_target, tunnel):
    from guacbridge.demo import free_port
    reply = service.create({**vnc_target, "port": free_port()})

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing()
    status, _, close = asyncio.run(scenario())
    assert status == 0x0207 and close == (1011, "519")


def test_guacd_down_gives_the_browser_upstream_unavailable(service_without_guacd, vnc_target,
                                                           tunnel):
    reply = service_without_guacd.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing()
    status, message, close = asyncio.run(scenario())
    assert status == 0x0208 and "guacd is not reachable" in message
    assert close == (1011, "520")


def test_deleting_a_console_ends_its_live_tunnel(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            started = time.monotonic()
            await asyncio.to_thread(service.delete, reply["id"])
            result = await t.closing()
            return result, time.monotonic() - started
    (status, message, close), took = asyncio.run(scenario())
    assert status == 0x020B and "closed by API" in message and close[1] == "523"
    assert took < 1.0


def test_the_session_ends_at_its_deadline(service, vnc_target, tunnel):
    reply = service.create(vnc_target, max_duration=2)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            started = time.monotonic()
            result = await t.closing(timeout=10)
            return result, time.monotonic() - started
    (status, message, _), took = asyncio.run(scenario())
    assert status == 0x020B and "time limit" in message
    assert took < 4
    assert service.get(reply["id"])["close_reason"] == "time limit reached"


def test_keystrokes_typed_in_the_tunnel_run_in_the_remote_xterm(service, vnc_target, tunnel,
                                                               tmp_path):
    marker = tmp_path / "typed-through-the-tunnel"
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            # twm: focus follows the pointer, and a loaded machine may move it late; a line
            # typed before the focus came is a failed command, and the next try a new line.
            for attempt in range(3):
                t.send(protocol.encode("mouse", 200 + attempt, 200, 0))
                await t.drain(0.3 + attempt)
                for ch in f"touch {marker}\r":
                    keysym = 0xFF0D if ch == "\r" else ord(ch)
                    t.send(protocol.encode("key", keysym, 1) + protocol.encode("key", keysym, 0))
                deadline = time.monotonic() + 5
                while not marker.exists() and time.monotonic() < deadline:
                    await t.drain(0.2)
                if marker.exists():
                    return
    asyncio.run(scenario())
    assert marker.exists()


def test_tokens_and_passwords_never_reach_the_log(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
        async with tunnel(reply) as t:          # a refused second use is logged too
            await t.closing()
    asyncio.run(scenario())
    time.sleep(0.3)
    log = service.log_text()
    assert reply["id"] in log
    assert reply["websocket"]["token"] not in log
    assert vnc_target["password"] not in log


def test_a_console_is_connecting_until_its_first_frame_then_active(service, vnc_target, tunnel):
    reply = service.create(vnc_target)
    traded = service.api("POST", f"/console/{reply['id']}/session", key=None,
                         json={"token": reply["websocket"]["token"]})
    assert traded.status_code == 201
    secret = traded.json()["session"]
    assert service.get(reply["id"])["state"] == "connecting"

    async def scenario():
        async with tunnel(reply, console=reply["id"], session=secret) as t:
            await t.until("sync")
            await asyncio.sleep(0.3)
            return await asyncio.to_thread(service.get, reply["id"])
    shown = asyncio.run(scenario())
    assert shown["state"] == "active" and shown["up_at"] is not None


def test_a_console_that_never_drew_a_frame_never_counts_as_up(service, vnc_target, tunnel):
    reply = service.create({**vnc_target, "password": "wrong-pw"})

    async def scenario():
        async with tunnel(reply) as t:
            await t.closing()
    asyncio.run(scenario())
    assert service.get(reply["id"])["up_at"] is None


def test_exit_in_an_ssh_console_ends_the_tunnel_cleanly_not_as_a_lost_guacd(service, sshd,
                                                                            console_user,
                                                                            tunnel):
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"],
                            "password": console_user["password"]})

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            await t.drain(1.5)                             # the shell prompt
            for ch in "exit\r":
                keysym = 0xFF0D if ch == "\r" else ord(ch)
                t.send(protocol.encode("key", keysym, 1) + protocol.encode("key", keysym, 0))
            return await t.closing(timeout=15)
    status, message, close = asyncio.run(scenario())
    # guacd says goodbye with its disconnect instruction; the browser sees a normal end,
    # not the "connection to guacd was lost" that would make the page reconnect.
    assert status is None and close == (1000, "0"), (status, message, close)
