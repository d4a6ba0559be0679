"""Broker producers are who RabbitMQ says they are: each producer logs in as its own RabbitMQ
user with the permissions docs/broker.rst gives, and so does the worker; a job's owner is its
message's user_id, which RabbitMQ checks against the login. A producer cannot take another's
job_id (and with it the first producer's link), nor extend or close another's consoles,
unless the TOML file makes it an admin producer."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid

import pika
import pika.exceptions
import pytest

from broker_fixtures import WORKER_PERMISSIONS, producer_permissions
from guacbridge import grants
from test_broker import TARGET, Producer, Worker

pytestmark = pytest.mark.integration
NO_USER_ID = "the message has no user_id property: publish it with user_id set to the RabbitMQ"


@pytest.fixture
def producers(rabbitmq, tmp_path):
    """A vhost with the worker's own user (admin producer: ops-bot) and three producers,
    alice, bob and ops-bot, each with its own login; guest watches the dead letters."""
    vhost = rabbitmq.new_vhost()
    worker = Worker(tmp_path / "w1", rabbitmq.add_user(vhost, "guacbridge", WORKER_PERMISSIONS),
                    broker_toml='admin_producers = ["ops-bot"]\n')
    users = {name: rabbitmq.add_user(vhost, name, producer_permissions(name))
             for name in ("alice", "bob", "ops-bot")}
    observer = Producer(vhost)
    observer.wait_for_topology()
    made = {name: Producer(url, replies=f"{name}.replies") for name, url in users.items()}
    made["observer"] = observer
    made["url"] = users
    yield made
    worker.stop()
    for name, producer in made.items():
        if name != "url" and producer.connection.is_open:
            producer.connection.close()


def job_id():
    return f"p-{uuid.uuid4().hex[:10]}"


def ask(producer, timeout=30, **job):
    """Publish one job as *producer* and wait for its reply."""
    body = {"version": 1, "job_id": job.pop("job_id", None) or job_id(), **job}
    producer.publish(body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for correlation, reply in producer.replies(1, timeout=deadline - time.monotonic()):
            if correlation == body["job_id"]:
                return reply
    raise AssertionError(f"no reply to {body}")


def dead_letters(observer, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    dead = []
    while len(dead) < count and time.monotonic() < deadline:
        dead += observer.queue("guacbridge.dead")
        time.sleep(0.1)
    return [(headers, json.loads(body)) for headers, body in dead]


def token_hash(tmp_path, console_id):
    with sqlite3.connect(tmp_path / "data" / "guacbridge.sqlite3") as db:
        return db.execute("SELECT token_hash FROM console_grant WHERE id = ?",
                          (console_id,)).fetchone()[0]


def test_a_job_id_is_its_producers_and_another_cannot_take_its_link(producers, tmp_path):
    alice, bob = producers["alice"], producers["bob"]
    first = ask(alice, action="open", target=TARGET, job_id="p-1", user="alice")
    assert first["result"] is True and first["owner"] == "amqp:alice"
    token = first["websocket"]["token"]

    taken = ask(bob, action="open", target=TARGET, job_id="p-1", user="mallory")
    assert taken == {"result": False, "details": "job_id p-1 belongs to another producer",
                     "job_id": "p-1"}
    (headers, body), = dead_letters(producers["observer"])
    assert headers["x-guacbridge-reason"] == "job_id p-1 belongs to another producer"
    assert headers["x-guacbridge-producer"] == "bob" and body["job_id"] == "p-1"
    # The first producer's link still works: its token is the one the store holds.
    assert token_hash(tmp_path, first["id"]) == grants.hash_token(token)

    again = ask(alice, action="open", target=TARGET, job_id="p-1")   # its own replay
    assert again["result"] is True and again["id"] == first["id"]


def test_only_its_producer_or_an_admin_extends_or_closes_a_console(producers):
    alice, bob, ops = producers["alice"], producers["bob"], producers["ops-bot"]
    console = ask(alice, action="open", target=TARGET)["id"]
    missing = "00000000-0000-0000-0000-000000000000"

    # bob's extend and close of alice's console answer like a console that does not exist,
    # and a header claiming another producer changes nothing: only a worker's is believed.
    for action, extra in (("extend", {"seconds": 60}), ("close", {"reason": "pwned"})):
        refused = ask(bob, action=action, console_id=console, **extra)
        assert refused["result"] is False
        assert refused["details"] == f"no console with id {console}"
        assert ask(bob, action=action, console_id=missing, **extra)["details"] == \
            f"no console with id {missing}"
    bob.channel.basic_publish("guacbridge.jobs", "static", json.dumps(
        {"version": 1, "job_id": job_id(), "action": "close", "console_id": console,
         "reason": "pwned"}).encode(), pika.BasicProperties(
        user_id="bob", reply_to=bob.reply_queue, correlation_id="spoof",
        headers={"x-guacbridge-producer": "alice"}))
    (correlation, spoofed), = bob.replies(1)
    assert spoofed["details"] == f"no console with id {console}"
    reasons = [h["x-guacbridge-reason"] for h, _ in dead_letters(producers["observer"], 5)]
    assert reasons == [f"no console with id {c}" for c in (console, missing) * 2 + (console,)]

    extended = ask(alice, action="extend", console_id=console, seconds=60)
    assert extended["result"] is True and extended["state"] == "pending", extended
    assert extended["close_reason"] is None                  # bob's close did nothing

    # The admin producer acts on every owner's consoles.
    assert ask(ops, action="extend", console_id=console, seconds=60)["result"] is True
    closed = ask(ops, action="close", console_id=console, reason="maintenance")
    assert closed["result"] is True and closed["state"] == "closed"
    assert closed["close_reason"] == "maintenance" and closed["owner"] == "amqp:alice"


def test_a_spoofed_user_id_is_refused_by_rabbitmq(producers, tmp_path):
    bob = producers["bob"]
    body = {"version": 1, "job_id": job_id(), "action": "open", "target": TARGET}
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        bob.channel.basic_publish("guacbridge.jobs", "static", json.dumps(body).encode(),
                                  pika.BasicProperties(user_id="alice", reply_to=bob.reply_queue,
                                                       correlation_id=body["job_id"]))
    # RabbitMQ closes the publisher's channel; the job never reaches a queue.
    assert refused.value.reply_code == 406
    assert refused.value.reply_text == ("PRECONDITION_FAILED - user_id property set to 'alice'"
                                        " but authenticated user was 'bob'")
    bob.connect()
    assert bob.replies(1, timeout=2) == []
    assert dead_letters(producers["observer"], timeout=1) == []
    assert not (tmp_path / "data" / "guacbridge.sqlite3").exists() or \
        not sqlite3.connect(tmp_path / "data" / "guacbridge.sqlite3").execute(
            "SELECT id FROM console_grant").fetchall()


def test_a_job_without_user_id_is_dead_lettered_saying_to_set_it(producers):
    alice = producers["alice"]
    body = {"version": 1, "job_id": job_id(), "action": "open", "target": TARGET}
    alice.publish(body, user_id=None)
    (correlation, reply), = alice.replies(1)
    assert correlation == body["job_id"] and reply["result"] is False
    assert reply["details"].startswith(NO_USER_ID) and "RabbitMQ checks it" in reply["details"]
    (headers, _), = dead_letters(producers["observer"])
    assert headers["x-guacbridge-reason"] == reply["details"]
    assert "x-guacbridge-producer" not in headers


def test_submit_publishes_as_its_login(producers, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("job-secret\n")
    out = subprocess.run([sys.executable, "-m", "guacbridge.cli", "submit", "--amqp-url",
                          producers["url"]["alice"], "--host", "10.0.0.5", "--port", "5901",
                          "--password-file", str(pw), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["owner"] == "amqp:alice"
    out = subprocess.run([sys.executable, "-m", "guacbridge.cli", "submit", "--amqp-url",
                          producers["url"]["bob"], "--action", "close", "--console",
                          reply["id"]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == f"guacbridge submit: no console with id {reply['id']}"


def test_a_job_the_worker_sends_again_keeps_its_producer(rabbitmq, tmp_path, mariadb):
    """A misrouted job the worker hands to its agent's queue, and a job it retries, are
    published by the worker's own user: they keep their producer (and stay its alone)."""
    from guacbridge.demo import free_port
    vhost = rabbitmq.new_vhost()
    worker = Worker(tmp_path / "w1", rabbitmq.add_user(vhost, "guacbridge", WORKER_PERMISSIONS),
                    guacamole_db=f"mysql://gb:pw@127.0.0.1:{free_port()}/guacamole")
    alice = Producer(rabbitmq.add_user(vhost, "alice", producer_permissions(
        "alice", write=r"^guacbridge\.(jobs|unrouted)$")), replies="alice.replies")
    observer = Producer(vhost)
    try:
        observer.wait_for_topology()
        misrouted = {"version": 1, "job_id": job_id(), "action": "open", "target": TARGET}
        alice.publish(misrouted, exchange="guacbridge.unrouted")
        (_, reply), = alice.replies(1)
        assert reply["result"] is True and reply["owner"] == "amqp:alice"

        alice.publish({"version": 1, "job_id": job_id(), "action": "open", "sink": "guacamole",
                       "user": "alice", "target": TARGET})
        (_, reply), = alice.replies(1, timeout=20)
        assert reply["result"] is False and "gave up after 2 retries" in reply["details"]
        (headers, _), = dead_letters(observer)
        assert headers["x-guacbridge-attempts"] == 2
        assert headers["x-guacbridge-producer"] == "alice"
    finally:
        worker.stop()
        alice.connection.close()
        observer.connection.close()
