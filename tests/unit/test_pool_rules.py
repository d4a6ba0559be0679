"""The guacd pool's choices, against stand-ins that answer guacd's handshake (or do not).

The real-stack story (two real guacd, one killed mid-session) is in
tests/integration/test_guacd_pool.py; these pin down the rules one at a time.
"""
from __future__ import annotations

import asyncio

import pytest

from guacbridge import guacd, protocol
from guacbridge.demo import free_port
from guacbridge.guacd_pool import GuacdPool
from guacbridge.status import Status

CAPS = guacd.Capabilities()


class StandIn:
    """A guacd stand-in: answers select/connect, or refuses the target like guacd does."""

    def __init__(self, error: tuple[str, int] | None = None, silent: bool = False) -> None:
        self.error, self.silent = error, silent
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self.server.sockets[0].getsockname()[:2]

    async def _serve(self, reader, writer) -> None:
        self.writers.append(writer)
        if self.silent:                      # accepts, never reads, never hangs up
            await asyncio.sleep(3600)
        parser = protocol.Parser()
        while data := await reader.read(65536):
            try:
                instructions = parser.feed(data)
            except protocol.ProtocolError:   # the probe's nop: refused, like guacd does
                break
            for elements in instructions:
                if elements[0] == "nop":
                    writer.close()
                    return
                if elements[0] == "select":
                    self.connections += 1
                    writer.write(protocol.encode("args", "VERSION_1_3_0", "hostname").encode())
                elif elements[0] == "connect":
                    reply = (protocol.encode("error", *self.error) if self.error
                             else protocol.encode("ready", "$x"))
                    writer.write(reply.encode())
        writer.close()

    def close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()


async def connect(pool: GuacdPool) -> guacd.GuacdConnection:
    return await pool.connect("vnc", {"hostname": "h"}, CAPS, timeout=2)


def live(pool: GuacdPool) -> list[int]:
    return [b["live_tunnels"] for b in pool.status()]


def test_new_tunnels_go_to_the_guacd_with_the_fewest_live_ones():
    async def scenario():
        a, b = StandIn(), StandIn()
        pool = GuacdPool([await a.start(), await b.start()])
        conns = [await connect(pool) for _ in range(4)]
        spread = live(pool)
        pool.release(conns[0])                     # one ends on the first guacd…
        after_release = live(pool)
        await connect(pool)                        # …so the next one goes there
        return spread, after_release, live(pool), (a.connections, b.connections)
    spread, after_release, after, served = asyncio.run(scenario())
    assert spread == [2, 2]
    assert after_release == [1, 2]
    assert after == [2, 2] and served == (3, 2)


def test_a_refusing_guacd_is_marked_down_and_the_next_one_serves():
    async def scenario():
        b = StandIn()
        dead = ("127.0.0.1", free_port())
        pool = GuacdPool([dead, await b.start()])
        first = await connect(pool)
        second = await connect(pool)               # the dead one is now tried last
        return pool.status(), first.address, second.address, b.connections, pool
    status, first, second, served, pool = asyncio.run(scenario())
    assert first == second == pool.backends[1].address and served == 2
    assert status[0]["up"] is False and "not reachable" in status[0]["reason"]
    assert status[1] == {"address": pool.backends[1].name, "up": True, "live_tunnels": 2}
    assert pool.backends[0].refusals == 1          # once: afterwards it came last


def test_an_error_about_the_target_is_not_retried_on_another_guacd():
    async def scenario():
        wrong = StandIn(error=("Authentication failure", 769))
        other = StandIn()
        pool = GuacdPool([await wrong.start(), await other.start()])
        pool._turn = 0                             # the refusing one first
        with pytest.raises(guacd.GuacdError) as e:
            await connect(pool)
        return e.value, other.connections, live(pool), pool.status()
    error, other_served, counts, status = asyncio.run(scenario())
    assert not isinstance(error, guacd.GuacdUnavailable)
    assert (error.status, error.message) == (769, "Authentication failure")
    assert other_served == 0 and counts == [0, 0]
    assert all(b["up"] for b in status)            # guacd itself did its job


def test_when_every_guacd_refuses_the_browser_learns_it_is_upstream_unavailable():
    async def scenario():
        pool = GuacdPool([("127.0.0.1", free_port()), ("127.0.0.1", free_port())])
        with pytest.raises(guacd.GuacdUnavailable) as e:
            await connect(pool)
        return e.value, await pool.check()
    error, readiness = asyncio.run(scenario())
    assert error.status == Status.UPSTREAM_UNAVAILABLE
    assert "no guacd of 2 could serve" in error.message
    assert readiness.startswith("no guacd is up: 127.0.0.1:")


def test_a_guacd_that_accepts_but_never_answers_is_down_after_a_probe():
    async def scenario():
        hung, ok = StandIn(silent=True), StandIn()
        pool = GuacdPool([await hung.start(), await ok.start()], probe_timeout=0.3)
        await pool.probe_all()
        return pool.status(), await pool.check()
    status, readiness = asyncio.run(scenario())
    assert status[0]["up"] is False and "did not answer a probe" in status[0]["reason"]
    assert status[1]["up"] is True and readiness is None


def test_a_probe_brings_a_guacd_back_once_it_listens_again():
    async def scenario():
        port = free_port()
        pool = GuacdPool([("127.0.0.1", port)])
        down = await pool.probe(pool.backends[0])
        reason = await pool.check()
        back = StandIn()
        await back.start(port)
        up = await pool.probe(pool.backends[0])
        conn = await connect(pool)
        return down, reason, up, conn.address, await pool.check()
    down, reason, up, address, readiness = asyncio.run(scenario())
    assert (down, up) == (False, True)
    assert "not reachable" in reason and readiness is None
    assert address[1] > 0


def test_guacds_marked_down_are_still_tried_when_none_looks_up():
    async def scenario():
        a = StandIn()
        pool = GuacdPool([await a.start()])
        pool._mark(pool.backends[0], False, "a stale view")
        conn = await connect(pool)
        return conn, pool.status()
    conn, status = asyncio.run(scenario())
    assert conn.connection_id == "$x"
    assert status == [{"address": status[0]["address"], "up": True, "live_tunnels": 1}]


def test_a_lost_connection_probes_its_guacd_at_once():
    async def scenario():
        a, b = StandIn(), StandIn()
        pool = GuacdPool([await a.start(), await b.start()])
        pool._turn = 0
        conn = await connect(pool)
        a.close()                                  # the guacd goes away under the tunnel
        await asyncio.sleep(0.05)
        pool.release(conn, lost=True)
        for _ in range(50):
            await asyncio.sleep(0.02)
            if not pool.backends[0].up:
                break
        return pool.status()
    status = asyncio.run(scenario())
    assert status[0]["up"] is False and status[0]["live_tunnels"] == 0
    assert status[1]["up"] is True


def test_a_guacd_that_accepts_but_never_answers_the_handshake_is_skipped():
    async def scenario():
        hung, ok = StandIn(silent=True), StandIn()
        pool = GuacdPool([await hung.start(), await ok.start()])
        conn = await pool.connect("vnc", {"hostname": "h"}, CAPS, timeout=0.3)
        return conn.address, pool.status(), pool.backends
    address, status, backends = asyncio.run(scenario())
    assert address == backends[1].address
    assert status[0]["up"] is False and "handshake in time" in status[0]["reason"]
