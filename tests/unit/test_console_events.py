"""Audit in the core, on the real SQLite store: events are written for what happens and never
carry a secret, old consoles are purged with their events, and a console closed by another
instance ends the tunnels held here."""
import asyncio
import json

import pytest

from guacbridge import audit, config
from guacbridge.agents import load_agents
from guacbridge.audit import Client, LiveTunnel
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

TARGET = {"agent": "static", "protocol": "ssh", "hostname": "10.0.0.5", "username": "root",
          "password": "hunter22"}


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path, clock, instance, **options):
    settings = config.load(env={}, data_dir=str(tmp_path), instance=instance, **options)
    return assemble(settings, SqliteGrantStore(settings.sqlite_path), load_agents(settings),
                    clock=clock)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def parts(tmp_path, clock):
    return make(tmp_path, clock, "one", audit_retention=3600)


def kinds(parts, console_id):
    trail = asyncio.run(parts.consoles.history(console_id))["events"]
    return [e["kind"] for e in trail], trail


def test_an_expired_link_is_recorded_as_closed_with_its_reason(parts, clock):
    reply = asyncio.run(parts.consoles.open({"target": TARGET, "user": "alice"}, owner="portal"))
    clock.now += 121

    async def one_sweep():
        task = asyncio.ensure_future(parts.sweeper.forever(interval=60))
        await asyncio.sleep(0.3)
        task.cancel()
    asyncio.run(one_sweep())
    names, trail = kinds(parts, reply["id"])
    assert names == ["created", "closed"] and trail[1]["data"] == {"reason": "expired"}
    assert trail[0]["instance"] == "one" and "hunter22" not in json.dumps(trail)


def test_an_event_refuses_anything_named_like_a_secret(parts):
    reply = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    for key in ("password", "token", "extra_token", "private_key", "session_secret"):
        with pytest.raises(ValueError):
            asyncio.run(parts.events.record(reply["id"], "shared", **{key: "x"}))
    asyncio.run(parts.events.record(reply["id"], "recording_started", file="r1.guac"))
    names, trail = kinds(parts, reply["id"])
    assert names == ["created", "recording_started"]       # another feature's own kind
    assert trail[1]["data"] == {"file": "r1.guac"}


def test_closed_consoles_and_their_events_are_purged_after_the_retention(parts, clock):
    old = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    asyncio.run(parts.consoles.close(old["id"], "done"))
    clock.now += 1800
    recent = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    asyncio.run(parts.consoles.close(recent["id"], "done"))
    live = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    clock.now += 1801                                      # old: closed 3601 s ago
    assert asyncio.run(parts.sweeper.purge()) == 1
    with pytest.raises(ConsoleError) as e:
        asyncio.run(parts.consoles.history(old["id"]))
    assert e.value.status == 404
    assert kinds(parts, recent["id"])[0] == ["created", "closed"]
    assert kinds(parts, live["id"])[0] == ["created"]
    assert parts.store.events(old["id"]) == []


def test_a_purged_console_takes_its_share_links_along_and_old_job_replies_go(parts,
                                                                                clock):
    from guacbridge.store.shares import Share, ShareStore
    shares = ShareStore(parts.store._db)
    old = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    kept = asyncio.run(parts.consoles.open({"target": TARGET}, owner="portal"))
    for n, console in enumerate((old, kept)):
        shares.issue(Share(f"s{n}", console["id"], "view", "portal", clock.now,
                           clock.now + 60), f"{n}" * 64)
        shares.set_live(console["id"], ("127.0.0.1", 4822), f"$conn-{n}", clock.now)
    parts.store.mark_replied("job-old", "m1", clock.now)
    asyncio.run(parts.consoles.close(old["id"], "done"))
    clock.now += 3601
    parts.store.mark_replied("job-new", "m2", clock.now)
    assert asyncio.run(parts.sweeper.purge()) == 1
    assert shares.of_console(old["id"]) == [] and shares.live(old["id"]) is None
    assert [s.id for s in shares.of_console(kept["id"])] == ["s1"]
    assert shares.live(kept["id"]) == (("127.0.0.1", 4822), "$conn-1")
    assert not parts.store.replied("job-old", "m1")      # a redelivery that late is new
    assert parts.store.replied("job-new", "m2")


def test_a_console_closed_by_another_instance_ends_the_tunnel_held_here(tmp_path, clock):
    here, there = make(tmp_path, clock, "here"), make(tmp_path, clock, "there")
    reply = asyncio.run(here.consoles.open({"target": TARGET}, owner="portal"))
    stopped = []

    async def scenario():
        grant = await here.sessions.start(reply["websocket"]["token"], None, "tun-1",
                                         Client("192.0.2.7", "Firefox"))
        here.live.attach(grant.id, stopped.append,
                    LiveTunnel("tun-1", grant.id, Client("192.0.2.7", "Firefox"),
                               clock(), lambda: (5000, 40)))
        for _ in range(50):                              # its row is written meanwhile
            listed = (await there.consoles.sessions())["sessions"]
            if listed[0]["tunnel"]:
                break
            await asyncio.sleep(0.02)
        await there.consoles.close(reply["id"], "closed by the operator")
        for _ in range(20):
            if stopped:
                break
            await asyncio.sleep(audit.WATCH_EVERY / 2)
        return listed
    listed = asyncio.run(scenario())
    assert stopped == ["closed by the operator"]
    assert listed[0]["tunnel"] == {"id": "tun-1", "instance": "here",
                                   "client_address": "192.0.2.7", "user_agent": "Firefox",
                                   "since": "2027-01-15T08:00:00Z", "bytes_to_browser": 5000,
                                   "bytes_from_browser": 40,
                                   "counted_at": "2027-01-15T08:00:00Z"}
    assert listed[0]["target"] == {"protocol": "ssh", "hostname": "10.0.0.5", "port": "22",
                                   "username": "root"}


def test_a_page_back_through_another_instance_ends_its_old_tunnel_here(tmp_path, clock,
                                                                        monkeypatch):
    monkeypatch.setattr("guacbridge.live.RECHECK", 0.05)
    here, there = make(tmp_path, clock, "here"), make(tmp_path, clock, "there")
    reply = asyncio.run(here.consoles.open({"target": TARGET}, owner="portal"))
    grant, secret = asyncio.run(here.sessions.open_page(reply["id"],
                                                       reply["websocket"]["token"], None))
    stopped = {"tun-1": [], "tun-3": []}

    async def scenario():
        first = await here.sessions.resume(grant.id, secret, "tun-1")
        here.live.attach(grant.id, stopped["tun-1"].append,
                    LiveTunnel("tun-1", grant.id, Client(), clock()), first.grant.deadline)
        kept = await here.consoles.open({"target": TARGET}, owner="portal")   # nobody takes it over
        kept_grant = await here.sessions.start(kept["websocket"]["token"], None, "tun-3")
        here.live.attach(kept_grant.id, stopped["tun-3"].append,
                    LiveTunnel("tun-3", kept_grant.id, Client(), clock()), kept_grant.deadline)
        await asyncio.sleep(0.2)
        assert stopped == {"tun-1": [], "tun-3": []}   # rechecked several times: all well
        await there.sessions.resume(grant.id, secret, "tun-2")   # the page, via the other
        for _ in range(50):
            if stopped["tun-1"]:
                break
            await asyncio.sleep(0.02)
    asyncio.run(scenario())
    assert stopped == {"tun-1": ["the console was opened again from this page"], "tun-3": []}
