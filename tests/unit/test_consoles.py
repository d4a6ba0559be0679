"""The core's rules, on the real SQLite store, with a clock the tests move."""
import asyncio
import sqlite3

import pytest

from guacbridge import config, grants, resources
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.grants import Refused
from guacbridge.store.sqlite import SqliteGrantStore

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901,
          "password": "hunter22"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def parts(tmp_path, clock):
    settings = config.load(env={}, data_dir=str(tmp_path), public_url="https://gw.example:8443/cb",
                           use_by=120, duration=7200, max_duration=3 * 3600)
    return assemble(settings, SqliteGrantStore(settings.sqlite_path), load_agents(settings),
                    clock=clock)


def run(coro):
    return asyncio.run(coro)


def open_console(parts, **request):
    return run(parts.consoles.open({"target": TARGET, **request}, owner="portal"))


def test_reply_is_cloudstack_style_with_the_token_only_in_the_url_fragment(parts):
    reply = open_console(parts, user="alice")
    token = reply["websocket"]["token"]
    assert reply["result"] is True and reply["details"] is None
    assert reply["url"] == f"https://gw.example:8443/cb/console/{reply['id']}#token={token}"
    assert reply["websocket"] == {"host": "gw.example", "port": 8443, "path": "/cb/tunnel",
                                  "secure": True, "token": token, "extra": None}
    assert len(token) >= 43                 # 256 bits, URL-safe base64
    assert reply["state"] == "pending"
    assert "hunter22" not in str(reply)     # the password never comes back
    assert reply["target"] == {"protocol": "vnc", "hostname": "10.0.0.5", "port": "5901"}


def test_the_store_keeps_only_a_hash_of_the_token(parts, tmp_path):
    reply = open_console(parts)
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("guacbridge.sqlite3*"))  # + WAL
    assert reply["websocket"]["token"].encode() not in raw
    assert grants.hash_token(reply["websocket"]["token"]).encode() in raw


def test_a_token_opens_a_session_once(parts, clock):
    token = open_console(parts)["websocket"]["token"]
    grant = run(parts.sessions.start(token, None, "t1"))
    assert grant.consumed_at == clock.now and grant.deadline == clock.now + 7200
    with pytest.raises(Refused, match="already been used"):
        run(parts.sessions.start(token, None, "t1"))


def test_two_racing_browsers_cannot_both_use_one_token(parts):
    token = open_console(parts)["websocket"]["token"]

    async def race():
        return await asyncio.gather(*(parts.sessions.start(token, None, "t1") for _ in range(8)),
                                    return_exceptions=True)
    results = run(race())
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Refused) for r in results if isinstance(r, Exception))


def test_an_unused_link_expires_after_its_ttl(parts, clock):
    token = open_console(parts, ttl=30)["websocket"]["token"]
    clock.now += 31
    with pytest.raises(Refused, match="expired"):
        run(parts.sessions.start(token, None, "t1"))


def test_a_link_closed_by_the_sweeper_still_says_it_expired(parts, clock):
    reply = open_console(parts, ttl=30)
    clock.now += 31
    assert parts.store.expire(clock.now, 120) == [(reply["id"], "expired")]
    with pytest.raises(Refused, match="expired"):
        run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))


def test_unknown_token_is_refused(parts):
    with pytest.raises(Refused, match="unknown"):
        run(parts.sessions.start("nope", None, "t1"))


def test_the_extra_token_must_match_and_a_wrong_one_does_not_burn_the_link(parts):
    token = open_console(parts, extra_token="second-factor")["websocket"]["token"]
    with pytest.raises(Refused, match="extra token"):
        run(parts.sessions.start(token, "wrong", "t1"))
    with pytest.raises(Refused, match="extra token"):
        run(parts.sessions.start(token, None, "t1"))
    assert run(parts.sessions.start(token, "second-factor", "t1")).has_extra


def test_a_closed_console_cannot_be_opened(parts):
    reply = open_console(parts)
    closed = run(parts.consoles.close(reply["id"], "revoked"))
    assert closed["state"] == "closed" and closed["close_reason"] == "revoked"
    with pytest.raises(Refused, match="closed"):
        run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))


def test_extend_moves_the_deadline_but_not_past_the_hard_cap(parts, clock):
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    extended = run(parts.consoles.extend(reply["id"], 1800))
    assert extended["deadline"] == _iso(grant.consumed_at + 7200 + 1800)
    capped = run(parts.consoles.extend(reply["id"], 99999))
    assert capped["deadline"] == _iso(grant.consumed_at + 3 * 3600) == capped["max_deadline"]


def test_the_sweeper_closes_consoles_past_their_deadline_and_stops_their_tunnels(parts, clock):
    reply = open_console(parts)
    run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    stopped = []
    parts.live.attach(reply["id"], stopped.append)
    clock.now += 7201
    run(parts.sweeper.sweep())
    assert stopped == ["time limit reached"]
    assert run(parts.consoles.get(reply["id"]))["close_reason"] == "time limit reached"


@pytest.mark.parametrize("request_, status, words", [
    ([], 400, "JSON object"),
    ({}, 400, "target is required"),
    ({"target": TARGET, "colour": "red"}, 400, "unknown field(s): colour"),
    ({"target": {**TARGET, "agent": "nope"}}, 400, "unknown agent 'nope'"),
    ({"target": {**TARGET, "protocol": "x11"}}, 400, "unsupported protocol"),
    ({"target": {**TARGET, "recording-path": "/etc"}}, 400, "unknown parameter(s) for vnc"),
    ({"target": {**TARGET, "port": 70000}}, 400, "port must be between"),
    ({"target": {**TARGET, "hostname": ""}}, 400, "hostname is required"),
    ({"target": TARGET, "ttl": 0}, 400, "ttl must be"),
    ({"target": TARGET, "max_duration": 99999}, 400, "max_duration must be"),
    ({"target": TARGET, "sink": "guacamole"}, 501, "sink 'guacamole' is not available"),
])
def test_bad_requests_get_a_clear_error(parts, request_, status, words):
    with pytest.raises(ConsoleError) as e:
        run(parts.consoles.open(request_, owner="portal"))
    assert e.value.status == status and words in e.value.details
    assert "hunter22" not in e.value.details


def test_a_password_of_the_wrong_type_is_refused_without_echoing_it(parts):
    with pytest.raises(ConsoleError) as e:
        run(parts.consoles.open({"target": {**TARGET, "password": ["hunter22"]}}, owner="p"))
    assert "password must be a string" in e.value.details and "hunter22" not in e.value.details


def test_unknown_console_is_404(parts):
    with pytest.raises(ConsoleError) as e:
        run(parts.consoles.get("00000000-0000-0000-0000-000000000000"))
    assert e.value.status == 404


def _iso(ts):
    from guacbridge.audit import iso as _iso
    return _iso(ts)


# -- the console page's reconnect secret -------------------------------------------------

def page_session(parts):
    reply = open_console(parts)
    grant, secret = run(parts.sessions.open_page(reply["id"], reply["websocket"]["token"], None))
    return reply, grant, secret


def test_the_page_trades_the_token_for_a_reconnect_secret_once(parts):
    reply, grant, secret = page_session(parts)
    assert grant.has_session and secret != reply["websocket"]["token"]
    with pytest.raises(ConsoleError) as e:
        run(parts.sessions.open_page(reply["id"], reply["websocket"]["token"], None))
    assert e.value.status == 403 and "already been used" in e.value.details
    with pytest.raises(Refused, match="already been used"):       # nor by a tunnel
        run(parts.sessions.start(reply["websocket"]["token"], None, "t9"))


def test_tunnels_come_back_with_the_secret_but_not_after_the_reconnect_window(parts, clock):
    reply, grant, secret = page_session(parts)
    assert run(parts.sessions.resume(reply["id"], secret, "t1")).grant.live_tunnel == "t1"
    run(parts.sessions.tunnel_ended(grant, "t1", "network dropped"))
    clock.now += 60
    assert run(parts.sessions.resume(reply["id"], secret, "t2")).grant.live_tunnel == "t2"
    run(parts.sessions.tunnel_ended(grant, "t2", "network dropped"))
    clock.now += 121
    with pytest.raises(Refused, match="left too long"):
        run(parts.sessions.resume(reply["id"], secret, "t3"))
    with pytest.raises(Refused, match="resumed elsewhere with a newer secret"):
        run(parts.sessions.resume(reply["id"], "not-the-secret", "t3"))


def test_a_replaced_tunnel_ending_late_does_not_start_the_reconnect_window(parts, clock):
    reply, grant, secret = page_session(parts)
    run(parts.sessions.resume(reply["id"], secret, "old"))
    run(parts.sessions.resume(reply["id"], secret, "new"))
    run(parts.sessions.tunnel_ended(grant, "old", "replaced"))
    clock.now += 3600
    assert parts.store.expire(clock.now, 120) == []           # "new" still holds it


REPLACED = "resumed elsewhere with a newer secret"


def page_call(parts, reply, secret):
    """What the page's own API (X-Console-Session) would answer: the grant, or 403."""
    return run(parts.sessions.page_grant(reply["id"], secret))


def test_a_resume_rotates_the_secret_the_old_one_dies_once_the_new_one_is_used(parts, tmp_path):
    reply, _, s0 = page_session(parts)
    s1 = run(parts.sessions.resume(reply["id"], s0, "t1")).secret
    assert s1 != s0 and len(s1) >= 43
    assert page_call(parts, reply, s0).id == reply["id"]    # a call sent before the notice
    assert page_call(parts, reply, s1).id == reply["id"]    # the page confirms s1
    with pytest.raises(Refused, match=REPLACED):            # s0, replayed from a log
        run(parts.sessions.resume(reply["id"], s0, "t2"))
    with pytest.raises(ConsoleError) as e:
        page_call(parts, reply, s0)
    assert e.value.status == 403
    s2 = run(parts.sessions.resume(reply["id"], s1, "t3")).secret     # the page, later
    assert run(parts.sessions.resume(reply["id"], s2, "t4")).grant.live_tunnel == "t4"
    with pytest.raises(Refused, match=REPLACED):       # the successor's resume confirmed it
        run(parts.sessions.resume(reply["id"], s1, "t5"))
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("guacbridge.sqlite3*"))
    assert not any(s.encode() in raw for s in (s0, s1, s2))          # hashes only
    assert grants.hash_token(s2).encode() in raw


def test_a_page_that_never_got_its_new_secret_comes_back_with_the_one_it_has(parts):
    reply, grant, s0 = page_session(parts)
    lost = run(parts.sessions.resume(reply["id"], s0, "t1")).secret   # the tunnel dropped
    run(parts.sessions.tunnel_ended(grant, "t1", "network dropped"))
    s2 = run(parts.sessions.resume(reply["id"], s0, "t2")).secret     # not locked out
    with pytest.raises(Refused, match=REPLACED):         # the undelivered one is gone
        run(parts.sessions.resume(reply["id"], lost, "t3"))
    assert page_call(parts, reply, s2).id == reply["id"]
    with pytest.raises(Refused, match=REPLACED):
        run(parts.sessions.resume(reply["id"], s0, "t3"))


def test_the_sweeper_closes_a_console_left_longer_than_the_window(parts, clock):
    reply, grant, secret = page_session(parts)
    clock.now += 121
    assert parts.store.expire(clock.now, 120) == [(reply["id"], "browser left")]


def test_a_token_for_another_console_is_refused_and_burnt(parts):
    reply = open_console(parts)
    other = open_console(parts)
    with pytest.raises(ConsoleError) as e:
        run(parts.sessions.open_page(other["id"], reply["websocket"]["token"], None))
    assert e.value.status == 403
    assert run(parts.consoles.get(reply["id"]))["state"] == "closed"


def test_a_direct_tunnel_console_ends_with_its_tunnel(parts):
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    run(parts.sessions.tunnel_ended(grant, "t1", "browser left"))
    shown = run(parts.consoles.get(reply["id"]))
    assert shown["state"] == "closed" and shown["close_reason"] == "browser left"


async def _until(condition, timeout: float = 10.0) -> None:
    """Give the core's watcher (which re-reads every RECHECK, patched short) time to act."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.02)


def test_a_tunnel_ends_when_its_console_is_closed_elsewhere(parts, clock, monkeypatch):
    monkeypatch.setattr("guacbridge.live.RECHECK", 0.05)
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    stopped = []

    async def tunnel_open_while_another_instance_closes_it():
        parts.live.attach(grant.id, stopped.append, deadline=grant.deadline)
        await asyncio.sleep(0.1)
        assert stopped == []
        parts.store.close(grant.id, "closed by an operator on another instance", clock.now)
        await _until(lambda: stopped)
    run(tunnel_open_while_another_instance_closes_it())
    assert stopped == ["closed by an operator on another instance"]


def test_an_extension_keeps_the_tunnel_open_past_the_first_deadline(parts, clock,
                                                                      monkeypatch):
    monkeypatch.setattr("guacbridge.live.RECHECK", 0.05)
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    stopped = []

    async def tunnel_open_across_the_deadline():
        parts.live.attach(grant.id, stopped.append, deadline=grant.deadline)
        await parts.consoles.extend(grant.id, 1800)
        clock.now = grant.deadline + 1
        await asyncio.sleep(0.2)
        assert stopped == []
        clock.now = grant.deadline + 1801
        await _until(lambda: stopped)
    run(tunnel_open_across_the_deadline())
    assert stopped == ["time limit reached"]


def test_a_tunnel_ends_when_its_console_is_removed_from_the_store(parts, monkeypatch):
    monkeypatch.setattr("guacbridge.live.RECHECK", 0.05)
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    stopped = []

    async def tunnel_open_while_its_row_goes():
        parts.live.attach(grant.id, stopped.append, deadline=grant.deadline)
        parts.store.delete(grant.id)
        await _until(lambda: stopped)
    run(tunnel_open_while_its_row_goes())
    assert stopped == ["console removed"]


def test_the_watcher_outlives_a_store_outage_and_acts_once_the_store_is_back(
        parts, clock, monkeypatch):
    from guacbridge.store.sql import StoreUnavailable
    monkeypatch.setattr("guacbridge.live.RECHECK", 0.05)
    reply = open_console(parts)
    grant = run(parts.sessions.start(reply["websocket"]["token"], None, "t1"))
    stopped, tries = [], []
    store = parts.store

    def down(*args):
        tries.append(args)
        raise StoreUnavailable("the grant store cannot be reached")

    async def a_deadline_passes_while_the_store_is_down():
        store.session_ends = store.closed_since = down
        parts.live.attach(grant.id, stopped.append, deadline=grant.deadline)
        clock.now = grant.deadline + 1           # due, but the store cannot confirm it
        await asyncio.sleep(1.5)
        assert stopped == [] and 2 <= len(tries) <= 8    # retried each second, no spin
        del store.session_ends, store.closed_since   # the store's own methods again
        await _until(lambda: stopped, timeout=3)
    run(a_deadline_passes_while_the_store_is_down())
    assert stopped == ["time limit reached"]


def test_a_database_made_before_rotation_gains_its_column_and_rotates(tmp_path, clock):
    old_schema = "".join(line for line in resources.sql("sqlite.sql").splitlines(True)
                         if "session_next_hash" not in line)
    path = tmp_path / "guacbridge.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
    settings = config.load(env={}, data_dir=str(tmp_path))
    old = assemble(settings, SqliteGrantStore(path), load_agents(settings), clock=clock)
    reply, _, s0 = page_session(old)
    s1 = run(old.sessions.resume(reply["id"], s0, "t1")).secret
    assert run(old.sessions.page_grant(reply["id"], s1)).id == reply["id"]
    with pytest.raises(Refused, match=REPLACED):
        run(old.sessions.resume(reply["id"], s0, "t2"))
