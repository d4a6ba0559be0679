"""A job acts for its producer only: the core's owner check on a repeated console id (the
broker's job_id), racing producers included, and jobs.run's rules for extend and close, on
the real SQLite store. The same over real RabbitMQ: tests/integration/test_broker_producers.py."""
import asyncio

import pytest

from guacbridge import config, jobs
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901}


@pytest.fixture
def parts(tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path), public_url="https://gw.example")
    return assemble(settings, SqliteGrantStore(settings.sqlite_path), load_agents(settings))


def run(coro):
    return asyncio.run(coro)


def job(**fields):
    return {"version": 1, "job_id": "p-1", **fields}


def test_another_owner_repeating_a_console_id_gets_no_token(parts):
    console_id = jobs.console_id_for("p-1")
    first = run(parts.consoles.open({"target": TARGET}, "amqp:alice", console_id=console_id))
    with pytest.raises(ConsoleError) as refused:
        run(parts.consoles.open({"target": TARGET}, "amqp:bob", console_id=console_id))
    assert refused.value.status == 409
    assert refused.value.details == f"console {console_id} belongs to another owner"
    grant = run(parts.sessions.start(first["websocket"]["token"], None, "t1"))   # still good
    assert grant.owner == "amqp:alice"


def test_two_producers_racing_for_one_console_id_cannot_both_get_a_token(parts, monkeypatch):
    console_id = jobs.console_id_for("p-1")
    run(parts.consoles.open({"target": TARGET}, "amqp:alice", console_id=console_id))
    real_get = parts.store.get
    calls = []

    def not_yet(grant_id):       # bob looked before alice's console was stored
        calls.append(grant_id)
        return None if len(calls) == 1 else real_get(grant_id)
    monkeypatch.setattr(parts.store, "get", not_yet)
    with pytest.raises(ConsoleError, match="belongs to another owner"):
        run(parts.consoles.open({"target": TARGET}, "amqp:bob", console_id=console_id))


def test_a_job_id_belongs_to_its_producer_admin_or_not(parts):
    first = run(jobs.run(parts.consoles, job(action="open", target=TARGET), "amqp:alice",
                         "static"))
    for admin in (False, True):
        with pytest.raises(jobs.JobRejected, match="^job_id p-1 belongs to another producer$"):
            run(jobs.run(parts.consoles, job(action="open", target=TARGET), "amqp:bob",
                         "static", admin=admin))
    again = run(jobs.run(parts.consoles, job(action="open", target=TARGET), "amqp:alice",
                         "static"))
    assert again["id"] == first["id"] and again["websocket"]["token"]


def test_extend_and_close_act_on_the_producers_own_consoles_unless_admin(parts):
    api_made = run(parts.consoles.open({"target": TARGET}, "portal"))["id"]   # an API key's
    for action in ("extend", "close"):
        with pytest.raises(jobs.JobRejected, match=f"^no console with id {api_made}$"):
            run(jobs.run(parts.consoles, job(action=action, console_id=api_made,
                                             reason="pwned"), "amqp:bob", "static"))
    assert run(parts.consoles.get(api_made))["state"] == "pending"
    closed = run(jobs.run(parts.consoles, job(action="close", console_id=api_made,
                                              reason="maintenance"), "amqp:ops", "static",
                          admin=True))
    assert closed["state"] == "closed" and closed["close_reason"] == "maintenance"
