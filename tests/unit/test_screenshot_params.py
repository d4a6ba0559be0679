"""What a screenshot asks guacd for: a read-only user, never a recorded session.

The picture itself is tested on real parts (tests/integration/test_screenshots.py); here the
parameters the screenshot hands the pool are read directly, since guacd does not say whether
a user joined read-only."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from guacbridge.grants import Target
from guacbridge.screenshots import Screenshots, unrecorded
from guacbridge.store.shares import LiveConnection

TARGET = Target("vnc", {"hostname": "10.0.0.5", "port": "5901", "password": "pw",
                        "recording-path": "/var/rec", "recording-name": "c.3"})


class Pool:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    async def join(self, address, connection_id, params, caps, timeout):
        self.asked.append(("join", connection_id, dict(params)))
        return SimpleNamespace()

    async def connect(self, protocol, params, caps, timeout):
        self.asked.append(("connect", protocol, dict(params)))
        return SimpleNamespace()


class Targets:
    async def for_connection(self, grant):
        return TARGET


def shots(live: LiveConnection | None) -> tuple[Screenshots, Pool]:
    pool = Pool()
    store = SimpleNamespace(live=lambda console_id: live)
    return Screenshots(pool, Targets(), store, None, 10.0), pool   # type: ignore[arg-type]


def test_a_screenshot_joins_the_owners_connection_as_a_read_only_user():
    screenshots, pool = shots(LiveConnection(("127.0.0.1", 4822), "$abc"))
    _, joined = asyncio.run(screenshots._connect(SimpleNamespace(id="c"), time.monotonic() + 5))
    assert joined is True
    assert pool.asked == [("join", "$abc", {"read-only": "true"})]


def test_a_screenshots_own_connection_is_read_only_and_unrecorded():
    screenshots, pool = shots(None)
    _, joined = asyncio.run(screenshots._connect(SimpleNamespace(id="c"), time.monotonic() + 5))
    assert joined is False
    assert pool.asked == [("connect", "vnc", {"hostname": "10.0.0.5", "port": "5901",
                                              "password": "pw", "read-only": "true"})]


def test_a_screenshots_connection_is_neither_recorded_nor_typescripted():
    params = {"hostname": "10.0.0.5", "port": "5901", "password": "pw",
              "recording-path": "/var/rec", "recording-name": "c.3",
              "create-recording-path": "true",
              "recording-exclude-output": "", "typescript-path": "/var/ts",
              "typescript-name": "t", "create-typescript-path": "true"}
    assert unrecorded(params) == {"hostname": "10.0.0.5", "port": "5901", "password": "pw"}
