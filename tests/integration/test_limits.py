"""Rate limits, caps on live consoles and the idle timeout, on a real service with short
settings: what an API client and a tunnel client see."""
import asyncio
import secrets
import time

import pytest

import leaks
from guacbridge import apikeys, protocol
from service_fixtures import start_service

pytestmark = pytest.mark.integration

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "127.0.0.1", "port": 5999,
          "password": "pw-of-a-limited-target"}
IDLE_WARNING_MSG = 0x4701
SESSION_TIMEOUT = 0x020A


def service_with(guacd, tmp_path_factory, name: str, toml: str):
    workdir = tmp_path_factory.mktemp(name)
    config = workdir / "guacbridge.toml"
    config.write_text(toml)
    return start_service(workdir, f"{guacd.host}:{guacd.port}", GUACBRIDGE_CONFIG=str(config))


OTHER_KEY = "a-second-key-" + secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def throttled(guacd, tmp_path_factory):
    leaks.remember(OTHER_KEY)
    s = service_with(guacd, tmp_path_factory, "throttled-service",
                     '[limits]\ncreate_per_key = "2/4s"\nconnect_per_address = "2/4s"\n'
                     + apikeys.toml_block(apikeys.from_secret("other", OTHER_KEY)))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def capped(guacd, tmp_path_factory):
    s = service_with(guacd, tmp_path_factory, "capped-service",
                     "[limits]\nconsoles_per_owner = 3\nconsoles_per_target = 2\n"
                     "[consoles]\nidle_timeout = 4\nidle_warning = 2\n")
    yield s
    s.stop()


def test_too_many_creations_get_429_with_retry_after_then_work_again(throttled):
    assert [throttled.api("POST", "/api/v1/consoles", json={"target": TARGET}).status_code
            for _ in range(2)] == [201, 201]
    r = throttled.api("POST", "/api/v1/consoles", json={"target": TARGET})
    assert r.status_code == 429 and r.json()["result"] is False
    assert "too many console creations with API key tests" in r.json()["details"]
    wait = int(r.headers["Retry-After"])
    assert wait >= 1
    time.sleep(wait)
    assert throttled.api("POST", "/api/v1/consoles", json={"target": TARGET}).status_code == 201


def test_too_many_tunnel_connects_are_refused_before_the_token_is_spent(throttled, vnc_target,
                                                                        tunnel):
    r = throttled.api("POST", "/api/v1/consoles", key=OTHER_KEY, json={"target": vnc_target})
    assert r.status_code == 201     # its own bucket: the previous test spent the other key's
    reply = r.json()
    bogus = {"websocket": {**reply["websocket"], "token": "not-a-token", "extra": None}}

    async def scenario():
        answers = []
        for _ in range(3):
            async with tunnel(bogus) as t:
                answers.append(await t.closing())
        return answers
    answers = asyncio.run(scenario())
    assert [a[0] for a in answers[:2]] == [0x0301, 0x0301]       # tried, and refused
    status, message, _ = answers[2]
    assert status == 0x031D and "too many tunnel connects from 127.0.0.1" in message
    time.sleep(2.1)

    async def real():
        async with tunnel(reply) as t:
            return await t.until("sync")
    assert "error" not in asyncio.run(real())          # the real link was not spent


def test_live_consoles_are_capped_per_target_and_per_owner(capped):
    other = {**TARGET, "hostname": "127.0.0.2"}
    opened = [capped.create(TARGET)["id"], capped.create(TARGET)["id"]]
    r = capped.api("POST", "/api/v1/consoles", json={"target": TARGET})
    assert r.status_code == 429 and "127.0.0.1:5999 has 2 live consoles" in r.json()["details"]
    opened.append(capped.create(other)["id"])
    r = capped.api("POST", "/api/v1/consoles", json={"target": {**TARGET, "hostname": "127.0.0.3"}})
    assert r.status_code == 429 and "tests has 3 live consoles" in r.json()["details"]
    capped.delete(opened.pop(0))
    opened.append(capped.create(TARGET)["id"])         # a closed console frees its slot
    for console in opened:
        capped.delete(console)


def test_an_idle_console_is_warned_then_closed_and_input_restarts_the_clock(guacd, capped,
                                                                            vnc_target,
                                                                            tunnel):
    reply = capped.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            seen = await t.until("msg", timeout=8)
            warning = seen["msg"][0]
            shift = 0xFFE1
            t.send(protocol.encode("key", shift, 1) + protocol.encode("key", shift, 0))
            again = await t.until("msg", timeout=8)     # the clock started over
            return warning, again, await t.closing(timeout=8)
    warning, again, (status, message, close) = asyncio.run(scenario())
    assert int(warning[0]) == IDLE_WARNING_MSG and 1 <= int(warning[1]) <= 2
    assert "unless you use the keyboard or mouse" in warning[2]
    assert "msg" in again and "error" not in again
    assert status == SESSION_TIMEOUT and "no keyboard or mouse input for 4 s" in message
    assert close[1] == str(SESSION_TIMEOUT)
    deadline = time.monotonic() + 5
    while capped.get(reply["id"])["state"] != "closed" and time.monotonic() < deadline:
        time.sleep(0.1)
    shown = capped.get(reply["id"])
    assert shown["state"] == "closed" and "no keyboard or mouse input" in shown["close_reason"]
