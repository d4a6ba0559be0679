"""guacd's ``required`` through the tunnel (guacbridge → guacd 1.3.0 → Xvnc with a password):
a tunnel client is asked for what the console lacks and answers with ``argv`` streams; a
console asked with "prompt": false fails at once instead. And the connection parameters
guacd 1.5/1.6 added are accepted, and ignored by guacd 1.3.0."""
import asyncio
import base64
import time

from guacbridge import protocol

CLIENT_UNAUTHORIZED = 0x0301


def argv(index: int, name: str, value: str) -> str:
    """How a Guacamole client answers ``required``: one argv stream per parameter."""
    return (protocol.encode("argv", index, "text/plain", name)
            + protocol.encode("blob", index, base64.b64encode(value.encode()).decode())
            + protocol.encode("end", index))


def without_password(vnc_target: dict) -> dict:
    return {k: v for k, v in vnc_target.items() if k != "password"}


def test_a_tunnel_client_is_asked_for_the_password_and_its_argv_answer_connects(
        service, vnc_target, tunnel):
    reply = service.create(without_password(vnc_target))

    async def scenario():
        async with tunnel(reply) as t:
            seen = await t.until("required")
            assert seen["required"] == [["password"]]       # as guacd sent it
            assert "sync" not in seen                        # nothing drawn yet: guacd waits
            t.send(argv(0, "password", vnc_target["password"]))
            drawn = await t.until("sync")
            assert "size" in drawn and "img" in drawn and t.error is None
    asyncio.run(scenario())
    assert vnc_target["password"] not in service.log_text()


def test_prompt_false_fails_at_once_naming_what_guacd_asked_for(service, vnc_target, tunnel):
    reply = service.create(without_password(vnc_target), prompt=False)

    async def scenario():
        async with tunnel(reply) as t:
            started = time.monotonic()
            status, message, close = await t.closing(timeout=5)
            return time.monotonic() - started, status, message, close
    took, status, message, close = asyncio.run(scenario())
    assert status == CLIENT_UNAUTHORIZED
    assert message.startswith("The server asks for credentials the console was not given"
                              " (password), and this console does not prompt for them")
    assert close[0] == 1008 and took < 1.0


def test_prompt_must_be_a_boolean(service, vnc_target):
    r = service.api("POST", "/api/v1/consoles", json={"target": vnc_target, "prompt": "no"})
    assert r.status_code == 400 and r.json()["details"] == "prompt must be true or false"


def test_guacd_15_and_16_parameters_are_accepted_and_guacd_13_still_connects(
        service, vnc_target, tunnel):
    reply = service.create({**vnc_target, "quality-level": 6, "compress-level": 2,
                            "disable-display-resize": True, "disable-server-input": False})

    async def scenario():
        async with tunnel(reply) as t:
            drawn = await t.until("sync")
            assert "img" in drawn and t.error is None
    asyncio.run(scenario())
    r = service.api("POST", "/api/v1/consoles", json={"target": {**vnc_target,
                                                                 "quality-level": 12}})
    assert r.status_code == 400
    assert r.json()["details"] == "target: quality-level must be between 0 and 9"
