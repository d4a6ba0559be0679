"""Several jobs in flight per consumer (``broker.prefetch``) over real RabbitMQ: each is
acknowledged only once its reply is confirmed, whatever order they end in, so a worker killed
with a full window, or a reply RabbitMQ refuses, loses no job and doubles no console."""
from __future__ import annotations

import signal
import time
import uuid
from urllib.parse import unquote, urlsplit

import pytest

from test_broker import Producer, broker_env, grants, job  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def unacknowledged(rabbitmq, url, queue="guacbridge.jobs.static"):
    vhost = unquote(urlsplit(url).path[1:])
    out = rabbitmq.ctl("list_queues", "-p", vhost, "-q", "--no-table-headers",
                       "name", "messages_unacknowledged").stdout
    for line in out.splitlines():
        name, _, count = line.strip().partition("\t")
        if name == queue:
            return int(count)
    return 0


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_killed_with_a_full_window_loses_no_job_and_doubles_no_console(
        broker_env, rabbitmq):
    url, producer, start_worker, tmp_path = broker_env
    declaring = start_worker("declare")
    producer.wait_for_topology()
    declaring.stop()                            # the topology is there; no worker now
    repeated = job()
    jobs_ = [repeated, job(), dict(repeated), job(), dict(repeated)] + [job() for _ in range(15)]
    for j in jobs_:                             # the same job_id three times in the window
        producer.publish(j)
    # RabbitMQ's memory alarm holds every reply's confirm: what the worker took stays in flight.
    assert rabbitmq.ctl("set_vm_memory_high_watermark", "0").returncode == 0
    try:
        first = start_worker("w1", broker_toml="concurrency = 1\nprefetch = 8\n")
        # One consumer has eight jobs at once: six consoles (the repeats wait for the first
        # of their job_id), and none of the eight is acknowledged or answered.
        assert wait_for(lambda: len(grants(tmp_path)) == 6), len(grants(tmp_path))
        time.sleep(1)
        assert len(grants(tmp_path)) == 6
        assert unacknowledged(rabbitmq, url) == 8
        assert first.done_count() == 0
        first.stop(signal.SIGKILL)
    finally:
        assert rabbitmq.ctl("set_vm_memory_high_watermark", "0.4").returncode == 0
    start_worker("w2")
    got = producer.replies_for([j["job_id"] for j in jobs_], [])
    assert {c for c, _ in got} == {j["job_id"] for j in jobs_}       # none lost
    assert all(reply["result"] for _, reply in got)
    assert len(grants(tmp_path)) == 18                                # one console per job_id
    assert len({reply["id"] for c, reply in got if c == repeated["job_id"]}) == 1


def test_a_reply_rabbitmq_refuses_is_not_lost_the_job_is_answered_later(broker_env):
    url, _, start_worker, tmp_path = broker_env
    # A reply queue that takes four messages and refuses (nacks) the rest until it is read.
    producer = Producer(url, replies=f"small.{uuid.uuid4().hex[:6]}")
    producer.channel.queue_delete(producer.reply_queue)
    producer.channel.queue_declare(producer.reply_queue, durable=True, arguments={
        "x-max-length": 4, "x-overflow": "reject-publish"})
    try:
        start_worker("w1", broker_toml="concurrency = 1\nprefetch = 8\n",
                     retry_delays="[1.0, 2.0, 3.0, 4.0]")
        producer.wait_for_topology()
        jobs_ = [job() for _ in range(10)]
        for j in jobs_:
            producer.publish(j)
        time.sleep(2)                           # replies past the fourth were refused
        got = producer.replies_for([j["job_id"] for j in jobs_], [])
        assert {c for c, _ in got} == {j["job_id"] for j in jobs_}   # each answered at last
        assert all(reply["result"] for _, reply in got)
        assert len(grants(tmp_path)) == 10
        assert producer.queue("guacbridge.dead") == []
    finally:
        producer.connection.close()
