"""Console jobs over real RabbitMQ: replies, events, dead letters, replays, a broker restart
and a worker killed mid-job, with `guacbridge worker` running as the operator runs it."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pika
import pytest

import leaks

pytestmark = pytest.mark.integration
TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901,
          "password": "job-secret"}
REPLIES = "test.replies"
AS_LOGIN = object()         # publish with user_id = the producer's own login (the default)


class Worker:
    def __init__(self, workdir, url, guacamole_db=None, broker_toml="",
                 retry_delays="[0.2, 0.4]"):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "guacbridge.toml").write_text(
            f"[broker]\nretry_delays = {retry_delays}\n{broker_toml}"
            "[guacamole]\nurl = \"http://guac.example/guacamole\"\n")
        env = {**os.environ, "GUACBRIDGE_AMQP_URL": url,
               "GUACBRIDGE_DATA_DIR": str(workdir.parent / "data"),
               "GUACBRIDGE_CONFIG": str(workdir / "guacbridge.toml")}
        if guacamole_db:
            env["GUACBRIDGE_GUACAMOLE_DB_URL"] = guacamole_db
        self.log = workdir / "worker.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "guacbridge.cli", "worker"],
                                            env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def done_count(self):
        return self.log.read_text().count("done: console")

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(30)


class Producer:
    """A producer as the docs describe one: it logs in as its own RabbitMQ user and sets
    user_id to that login on every job (RabbitMQ checks it; the worker makes it the owner)."""

    def __init__(self, url, replies=REPLIES):
        self.url = url
        self.user = pika.URLParameters(url).credentials.username
        self.reply_queue = replies
        self.connect()

    def connect(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(self.url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.queue_declare(self.reply_queue, durable=True)

    def wait_for_topology(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.channel.exchange_declare("guacbridge.jobs", passive=True)
                self.channel.queue_declare("guacbridge.jobs.static", passive=True)
                return
            except pika.exceptions.ChannelClosedByBroker:
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
                time.sleep(0.2)
        raise AssertionError("the worker did not declare its topology")

    def publish(self, body, routing_key="static", raw=False, user_id=AS_LOGIN,
                exchange="guacbridge.jobs", headers=None):
        if not raw:
            leaks.remember_in(body)
        self.channel.basic_publish(
            exchange, routing_key, body if raw else json.dumps(body).encode(),
            pika.BasicProperties(delivery_mode=2, reply_to=self.reply_queue,
                                 message_id=str(uuid.uuid4()), headers=headers,
                                 correlation_id=body["job_id"] if not raw else "raw",
                                 user_id=self.user if user_id is AS_LOGIN else user_id,
                                 content_type="application/json"))

    def replies(self, count, timeout=30):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                method, props, body = self.channel.basic_get(self.reply_queue,
                                                             auto_ack=True)
            except pika.exceptions.AMQPError:
                time.sleep(0.5)
                try:
                    self.connect()
                except pika.exceptions.AMQPError:
                    pass
                continue
            if method is None:
                self.connection.process_data_events(0.1)
                continue
            out.append((props.correlation_id, json.loads(body)))
            leaks.remember_in(out[-1][1])
        return out

    def replies_for(self, job_ids, got, timeout=60):
        """Read replies until every job in *job_ids* has one (duplicates are kept)."""
        deadline = time.monotonic() + timeout
        while {c for c, _ in got} < set(job_ids) and time.monotonic() < deadline:
            got += self.replies(1, timeout=max(0.1, deadline - time.monotonic()))
        time.sleep(0.5)                     # a duplicate would arrive about now
        return got + self.replies(10, timeout=0.5)

    def queue(self, name):
        got = []
        while True:
            method, props, body = self.channel.basic_get(name, auto_ack=True)
            if method is None:
                return got
            got.append((props.headers or {}, body))


def job(**fields):
    return {"version": 1, "job_id": f"job-{uuid.uuid4().hex[:12]}", "action": "open",
            "target": TARGET, **fields}


@pytest.fixture
def broker_env(rabbitmq, tmp_path):
    url = rabbitmq.new_vhost()
    workers = []

    def start_worker(name="w1", **kw):
        w = Worker(tmp_path / name, url, **kw)
        workers.append(w)
        return w
    producer = Producer(url)
    yield url, producer, start_worker, tmp_path
    for w in workers:
        w.stop()
    producer.connection.close()


def grants(tmp_path):
    with sqlite3.connect(tmp_path / "data" / "guacbridge.sqlite3") as db:
        return db.execute("SELECT id FROM console_grant").fetchall()


def test_a_job_gets_a_reply_with_the_console_and_an_event(broker_env):
    url, producer, start_worker, _ = broker_env
    start_worker()
    producer.wait_for_topology()
    events = producer.channel.queue_declare("", exclusive=True).method.queue
    producer.channel.queue_bind(events, "guacbridge.events", "console.#")
    the_job = job(user="alice")
    producer.publish(the_job)
    (correlation, reply), = producer.replies(1)
    assert correlation == the_job["job_id"] and reply["job_id"] == the_job["job_id"]
    assert reply["result"] is True and "#token=" in reply["url"]
    assert reply["websocket"]["token"] and "job-secret" not in json.dumps(reply)
    deadline = time.monotonic() + 10
    got = []
    while not got and time.monotonic() < deadline:
        got = producer.queue(events)
        time.sleep(0.1)
    body = json.loads(got[0][1])
    assert body["id"] == reply["id"] and "websocket" not in body
    assert reply["websocket"]["token"] not in got[0][1].decode()


def test_bad_jobs_are_dead_lettered_with_reasons_and_do_not_block_the_queue(broker_env):
    url, producer, start_worker, _ = broker_env
    start_worker()
    producer.wait_for_topology()
    producer.publish(b"{not json", raw=True)
    producer.publish({"version": 1, "action": "open", "target": TARGET, "job_id": "x" * 200})
    producer.publish(job(target={**TARGET, "agent": "nosuch"}), routing_key="nosuch")
    producer.publish(job(target={**TARGET, "port": "not-a-port"}))
    good = job()
    producer.publish(good)
    replies = dict(producer.replies(5))
    assert replies[good["job_id"]]["result"] is True              # not blocked
    deadline = time.monotonic() + 10
    dead = []
    while len(dead) < 4 and time.monotonic() < deadline:
        dead += producer.queue("guacbridge.dead")
        time.sleep(0.1)
    reasons = sorted(h["x-guacbridge-reason"] for h, _ in dead)
    assert len(reasons) == 4, reasons
    assert any("not JSON" in r for r in reasons)
    assert any(r.startswith("job_id:") for r in reasons)
    assert any("no agent serves routing key 'nosuch'" in r for r in reasons)
    assert any("port must be" in r for r in reasons)
    failed = [r for r in replies.values() if r["result"] is False]
    assert len(failed) == 4 and all(r["details"] for r in failed)


def test_a_replayed_job_id_gets_the_same_console(broker_env):
    url, producer, start_worker, tmp_path = broker_env
    start_worker()
    producer.wait_for_topology()
    the_job = job()
    producer.publish(the_job)
    first = producer.replies(1)[0][1]
    producer.publish(the_job)
    second = producer.replies(1)[0][1]
    assert first["id"] == second["id"]
    assert first["websocket"]["token"] != second["websocket"]["token"]   # the old one is void
    assert len(grants(tmp_path)) == 1


def test_passing_failures_are_retried_then_dead_lettered(broker_env, mariadb):
    url, producer, start_worker, _ = broker_env
    from guacbridge.demo import free_port
    down = f"mysql://gb:pw@127.0.0.1:{free_port()}/guacamole"
    start_worker(guacamole_db=down)
    producer.wait_for_topology()
    producer.publish(job(sink="guacamole", user="alice"))
    (_, reply), = producer.replies(1, timeout=20)
    assert reply["result"] is False and "gave up after 2 retries" in reply["details"]
    dead = producer.queue("guacbridge.dead")
    assert dead and dead[0][0]["x-guacbridge-attempts"] == 2
    assert "pw" not in reply["details"]


def test_submit_publishes_a_job_and_prints_the_url(broker_env, tmp_path):
    url, producer, start_worker, _ = broker_env
    start_worker()
    producer.wait_for_topology()
    pw = tmp_path / "pw"
    pw.write_text("job-secret\n")
    out = subprocess.run([sys.executable, "-m", "guacbridge.cli", "submit", "--amqp-url", url,
                          "--host", "10.0.0.5", "--port", "5901", "--password-file", str(pw),
                          "--user", "alice"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "/console/" in out.stdout and "#token=" in out.stdout


def test_a_broker_restart_mid_run_loses_no_job_and_doubles_none(broker_env, rabbitmq):
    url, producer, start_worker, tmp_path = broker_env
    start_worker("w1")
    start_worker("w2")
    producer.wait_for_topology()
    jobs_ = [job() for _ in range(300)]
    for j in jobs_:
        producer.publish(j)
    got = producer.replies(60)
    rabbitmq.stop()
    rabbitmq.start()
    got = producer.replies_for([j["job_id"] for j in jobs_], got, timeout=120)
    assert {c for c, _ in got} == {j["job_id"] for j in jobs_}    # every job answered
    assert all(reply["result"] for _, reply in got)
    assert len(grants(tmp_path)) == 300                           # one console each
    # A reply whose confirm the restart swallowed is sent again: at most the jobs in flight
    # (4 consumers, broker.prefetch = 16 each), and it names the same console.
    consoles_by_job = {}
    for correlation, reply in got:
        assert consoles_by_job.setdefault(correlation, reply["id"]) == reply["id"]
    assert len(got) - len(consoles_by_job) <= 4 * 16


def test_a_worker_killed_mid_job_leaves_exactly_one_console_per_job(broker_env):
    url, producer, start_worker, tmp_path = broker_env
    first = start_worker("w1")
    second = start_worker("w2")
    producer.wait_for_topology()
    jobs_ = [job() for _ in range(200)]
    for j in jobs_:
        producer.publish(j)
    got = producer.replies(40)
    first.stop(signal.SIGKILL)                       # mid-run: a job may be in flight
    got = producer.replies_for([j["job_id"] for j in jobs_], got)
    answered = {correlation for correlation, _ in got}
    assert answered == {j["job_id"] for j in jobs_}
    assert len(grants(tmp_path)) == 200             # exactly one console per job
    assert second.done_count() > 0 and first.done_count() > 0    # they shared the work


def test_a_graceful_shutdown_finishes_the_jobs_in_flight(broker_env):
    url, producer, start_worker, tmp_path = broker_env
    first = start_worker("w1")
    producer.wait_for_topology()
    jobs_ = [job() for _ in range(150)]
    for j in jobs_:
        producer.publish(j)
    got = producer.replies(20)
    first.stop(signal.SIGTERM)                       # mid-run
    assert first.process.returncode == 0
    assert "shutting down" in first.log.read_text()
    answered_before_restart = {c for c, _ in got} | {c for c, _ in producer.replies(200, 2)}
    second = start_worker("w2")
    got = producer.replies_for([j["job_id"] for j in jobs_],
                               [(c, None) for c in answered_before_restart])
    assert {c for c, _ in got} == {j["job_id"] for j in jobs_}     # none lost
    assert len(grants(tmp_path)) == 150                           # none doubled
    # Nothing the first worker had started was left for the second to do again.
    assert first.done_count() + second.done_count() == 150
