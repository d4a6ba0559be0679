"""Two real guacd behind one guacbridge: consoles spread over both, and when one dies its
browser is told and new consoles go to the other."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def readyz(service) -> tuple[int, dict]:
    r = service.api("GET", "/readyz", key=None)
    return r.status_code, r.json()


def live_by_port(body: dict) -> dict[int, int]:
    return {int(b["address"].rsplit(":", 1)[1]): b["live_tunnels"] for b in body["guacd"]}


def test_consoles_spread_over_both_guacd_and_survive_one_dying(two_guacd, pooled_service,
                                                              vnc_target, tunnel):
    a, b = two_guacd
    service = pooled_service

    async def scenario():
        first, second = service.create(vnc_target), service.create(vnc_target)
        async with tunnel(first) as t1:
            await t1.until("sync")
            alone = live_by_port(readyz(service)[1])
            victim, survivor = (a, b) if alone[a.port] == 1 else (b, a)
            async with tunnel(second) as t2:
                await t2.until("sync")
                spread = live_by_port(readyz(service)[1])
                # Kill the guacd that carries the first tunnel, the way a crash would.
                os.kill(victim.part.pid, signal.SIGKILL)
                victim.part.process.wait(5)
                lost = await t1.closing()
                await t2.drain(2)                 # the other tunnel keeps going
                await t2.until("sync")
                other = t2.error
            # New consoles, all through the guacd that is left.
            later = []
            for _ in range(3):
                reply = service.create(vnc_target)
                async with tunnel(reply) as t:
                    seen = await t.until("sync")
                    later.append((seen, live_by_port(readyz(service)[1])))
            return alone, spread, lost, other, later, readyz(service), survivor, victim
    alone, spread, lost, other, later, (status, after), survivor, victim = asyncio.run(
        scenario())
    metrics = {(s.name, s.labels.get("guacd")): s.value for family in
               text_string_to_metric_families(service.api("GET", "/metrics", key=None).text)
               for s in family.samples}

    assert sorted(alone.values()) == [0, 1]
    assert spread == {a.port: 1, b.port: 1}                 # least-loaded: one each
    # The tunnel through the dead guacd: its browser got an error it can show, with an
    # upstream status, and the close that goes with it. The other one kept going.
    status_code, message, close = lost
    assert status_code == 0x0203 and "connection to guacd was lost" in message
    assert close == (1011, "515")
    assert other is None
    # New consoles all work, through the survivor.
    assert all("sync" in seen for seen, _ in later)
    assert all(live[victim.port] == 0 and live[survivor.port] >= 1 for _, live in later)
    # /readyz: the dead one down, the service still ready.
    assert status == 200 and after["status"] == "ready" and after["checks"]["guacd"] == "ok"
    by_address = {g["address"]: g for g in after["guacd"]}
    dead = by_address[f"{victim.host}:{victim.port}"]
    assert dead["up"] is False and dead["live_tunnels"] == 0 and dead["reason"]
    assert by_address[f"{survivor.host}:{survivor.port}"]["up"] is True
    # The same view for Prometheus.
    assert metrics[("guacbridge_guacd_up", f"{victim.host}:{victim.port}")] == 0
    assert metrics[("guacbridge_guacd_up", f"{survivor.host}:{survivor.port}")] == 1
    assert metrics[("guacbridge_guacd_live_tunnels", f"{victim.host}:{victim.port}")] == 0


def test_readyz_is_not_ready_when_every_guacd_of_the_pool_is_down(two_guacd, pooled_service):
    assert readyz(pooled_service)[0] == 200
    for g in two_guacd:
        g.stop()
    deadline = time.monotonic() + 10          # a probe result stands for a second
    while (answer := readyz(pooled_service))[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, body = answer
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"]["guacd"].startswith("no guacd is up: ")
    assert [g["up"] for g in body["guacd"]] == [False, False]
