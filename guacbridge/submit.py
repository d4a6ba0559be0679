"""``guacbridge submit``: the producer's side of the job contract, for scripts and ops.

Publishes one job (persistent, confirmed by the broker) with a private reply queue and waits
for the reply with the matching correlation id. The message's ``user_id`` is the user the URL
logs in as: RabbitMQ checks it, and the worker makes that user the job's owner.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pika
import pika.exceptions

from .broker import JOBS, login_of


class SubmitFailed(Exception):
    pass


def submit(url: str, agent: str, job: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Publish *job* to *agent*'s queue as the URL's user and wait for its reply."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except pika.exceptions.AMQPError as e:
        raise SubmitFailed(f"cannot reach the broker ({type(e).__name__})") from None
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        correlation = str(uuid.uuid4())
        try:
            channel.basic_publish(JOBS, agent, json.dumps(job).encode(), pika.BasicProperties(
                content_type="application/json", delivery_mode=2, reply_to=reply_queue,
                correlation_id=correlation, message_id=str(uuid.uuid4()),
                user_id=login_of(url), app_id="guacbridge-submit"), mandatory=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code == 404:
                raise SubmitFailed("the broker has no guacbridge.jobs exchange yet: start a"
                                   " worker first") from None
            raise SubmitFailed(f"the broker refused the job: {e.reply_text}") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, props, body = channel.basic_get(reply_queue, auto_ack=True)
            if method is None:
                connection.process_data_events(0.1)
                continue
            if props.correlation_id == correlation:
                return json.loads(body)
        raise SubmitFailed(f"no reply within {timeout:.0f} s (job {job['job_id']})")
    finally:
        connection.close()
