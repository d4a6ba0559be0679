"""The RabbitMQ side: consume console jobs, answer them, and lose none.

Topology (declared here, idempotently): the durable topic exchange ``guacbridge.jobs`` with
the agent type as routing key and one durable queue per agent type, so a slow agent cannot
starve a fast one; its alternate exchange catches jobs for agent types nobody serves. Jobs
that can never succeed go to ``guacbridge.dead`` with the reason in the
``x-guacbridge-reason`` header; passing failures wait in ``guacbridge.retry.<agent>.<ms>`` and
come back, a bounded number of times. Events (opened, extended, closed) go to the topic
exchange ``guacbridge.events``.

Each consumer is a thread with its own connection and a prefetch of one: several threads per
agent type, and several workers on one queue, compete for jobs. A job is acknowledged only
after its outcome is stored and its reply confirmed by the broker; the core's work runs on
the service's event loop, the same code path as the HTTP API.

Who published a job is what RabbitMQ vouches for: the message's ``user_id`` property, which
RabbitMQ refuses to deliver unless it is the publisher's own login. The job's owner is
``amqp:<user_id>``; a message without it is dead-lettered, since nothing else (``app_id``,
the body) says who sent it. A job this worker publishes again (a retry, a misrouted job)
carries the worker's own login as ``user_id`` and the producer in ``x-guacbridge-producer``;
that header is believed only beside the worker's login, from nobody else.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions

from . import jobs
from .consoles import Consoles
from .events import ConsoleEvents
from .grants import GrantStore
from .metrics import Metrics
from .power import Power

if TYPE_CHECKING:
    from .service import Parts

log = logging.getLogger(__name__)

JOBS = "guacbridge.jobs"
UNROUTED = "guacbridge.unrouted"
DEAD = "guacbridge.dead"
EVENTS = "guacbridge.events"
REASON = "x-guacbridge-reason"
ATTEMPTS = "x-guacbridge-attempts"
PRODUCER = "x-guacbridge-producer"
NO_USER_ID = ("the message has no user_id property: publish it with user_id set to the RabbitMQ"
              " user you log in as (RabbitMQ checks it); without it nothing vouches for who"
              " sent the job")
JOB_TIMEOUT = 120.0   # seconds a job may take in the core before it counts as passing failure
MAX_PENDING_EVENTS = 10000


def queue_for(agent: str) -> str:
    return f"{JOBS}.{agent}"


def retry_queue(agent: str, delay: float) -> str:
    return f"guacbridge.retry.{agent}.{int(delay * 1000)}"


def declare(channel: Any, agents: list[str], retry_delays: tuple[float, ...]) -> None:
    """The whole topology; every declaration is idempotent."""
    channel.exchange_declare(UNROUTED, "fanout", durable=True)
    channel.queue_declare(UNROUTED, durable=True)
    channel.queue_bind(UNROUTED, UNROUTED)
    channel.exchange_declare(JOBS, "topic", durable=True,
                             arguments={"alternate-exchange": UNROUTED})
    for agent in agents:
        channel.queue_declare(queue_for(agent), durable=True)
        channel.queue_bind(queue_for(agent), JOBS, routing_key=agent)
    channel.exchange_declare(DEAD, "fanout", durable=True)
    channel.queue_declare(DEAD, durable=True)
    channel.queue_bind(DEAD, DEAD)
    for agent in agents:
        for delay in retry_delays:
            # Jobs wait out the delay here, then dead-letter back to their agent's queue.
            channel.queue_declare(retry_queue(agent, delay), durable=True, arguments={
                "x-message-ttl": int(delay * 1000), "x-dead-letter-exchange": JOBS,
                "x-dead-letter-routing-key": agent})
    channel.exchange_declare(EVENTS, "topic", durable=True)


def login_of(url: str) -> str | None:
    """The RabbitMQ user *url* logs in as (pika's ``guest`` when it names none); None for a
    login without a user name (EXTERNAL)."""
    return getattr(pika.URLParameters(url).credentials, "username", None) or None


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


class Broker:
    """All consumer threads of one process, plus the events publisher."""

    def __init__(self, consoles: Consoles, console_events: ConsoleEvents, store: GrantStore,
                 metrics: Metrics, loop: asyncio.AbstractEventLoop,
                 power: Power | None = None) -> None:
        self.consoles = consoles
        self.power = power
        self.console_events = console_events
        self.store = store          # which job messages were answered already
        self.metrics = metrics
        self.loop = loop
        self.settings = consoles.settings
        self.url = consoles.settings.amqp_url or ""
        self.login = login_of(self.url) if self.url else None   # vouches for jobs it re-sends
        self.admins = frozenset(self.settings.broker_admin_producers)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.consumers: list[Consumer] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.events_ready = threading.Condition()

    def connected(self) -> bool:
        return any(c.connection is not None and c.connection.is_open
                   for c in self.consumers)

    def start(self) -> None:
        agents = sorted(self.consoles.agents)
        concurrency = self.settings.broker_concurrency
        for agent in agents:
            for n in range(concurrency.get(agent, concurrency.get("*", 2))):
                self.consumers.append(Consumer(self, queue_for(agent), agent, f"{agent}-{n}"))
        self.consumers.append(Consumer(self, UNROUTED, None, "unrouted"))
        for consumer in self.consumers:
            thread = threading.Thread(target=consumer.run, name=f"broker-{consumer.name}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)
        events = threading.Thread(target=self._publish_events, name="broker-events",
                                  daemon=True)
        events.start()
        self.threads.append(events)
        self.console_events.add_listener(self._on_event)
        log.info("broker: consuming %s with %d consumers", ", ".join(agents),
                 len(self.consumers) - 1)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs in flight, then close; unstarted jobs stay on the broker."""
        self.stopping.set()
        for consumer in self.consumers:
            consumer.stop()
        with self.events_ready:
            self.events_ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def replied(self, job_id: str, message_id: str) -> bool:
        return self.store.replied(job_id, message_id)

    def mark_replied(self, job_id: str, message_id: str) -> None:
        self.store.mark_replied(job_id, message_id, time.time())

    def run_job(self, coro: Any) -> dict[str, Any]:
        """Run a core coroutine on the service's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(JOB_TIMEOUT)

    # -- events ------------------------------------------------------------------------

    def _on_event(self, event: str, body: dict[str, Any]) -> None:
        with self.events_ready:
            if len(self.events) >= MAX_PENDING_EVENTS:   # the broker has been away long
                self.events.pop(0)
                log.warning("broker events: queue full, the oldest event was dropped")
            self.events.append((event, body))
            self.events_ready.notify()

    def _publish_events(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                connection = _connect(self.url)
                channel = connection.channel()
                channel.exchange_declare(EVENTS, "topic", durable=True)
                channel.confirm_delivery()
                backoff.reset()
                while not self.stopping.is_set() or self.events:
                    with self.events_ready:
                        if not self.events:
                            self.events_ready.wait(1.0)
                            connection.process_data_events(0)
                            continue
                        event, body = self.events[0]
                    channel.basic_publish(EVENTS, f"console.{event}", json.dumps(body).encode(),
                                          pika.BasicProperties(content_type="application/json",
                                                               delivery_mode=2))
                    with self.events_ready:
                        self.events.pop(0)
                connection.close()
                return
            except pika.exceptions.AMQPError as e:
                log.warning("broker events: %s; reconnecting", type(e).__name__)
                backoff.sleep(self.stopping)


class Backoff:
    """0.5 s, doubling, at most 10 s, between reconnects."""

    def __init__(self) -> None:
        self.delay = 0.5

    def reset(self) -> None:
        self.delay = 0.5

    def sleep(self, stopping: threading.Event) -> None:
        stopping.wait(self.delay)
        self.delay = min(self.delay * 2, 10.0)


class Consumer:
    def __init__(self, broker: Broker, queue: str, agent: str | None, name: str) -> None:
        self.broker = broker
        self.queue = queue
        self.agent = agent
        self.name = name
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None

    def run(self) -> None:
        backoff = Backoff()
        while not self.broker.stopping.is_set():
            try:
                self.connection = _connect(self.broker.url)
                self.channel = self.connection.channel()
                declare(self.channel, sorted(self.broker.consoles.agents),
                        self.broker.settings.broker_retry_delays)
                self.channel.confirm_delivery()
                self.channel.basic_qos(prefetch_count=1)
                self.channel.basic_consume(self.queue, self._on_message)
                backoff.reset()
                log.debug("broker %s: consuming %s", self.name, self.queue)
                self.channel.start_consuming()
                if self.broker.stopping.is_set():
                    self.connection.close()
                    return
            except pika.exceptions.AMQPError as e:
                if self.broker.stopping.is_set():
                    return
                log.warning("broker %s: connection lost (%s); reconnecting", self.name,
                            type(e).__name__)
                backoff.sleep(self.broker.stopping)
            except Exception:
                # Never let a consumer thread die: the queue would lose a worker silently.
                log.exception("broker %s: unexpected error; reconnecting", self.name)
                backoff.sleep(self.broker.stopping)

    def stop(self) -> None:
        connection, channel = self.connection, self.channel
        if connection is None or channel is None:
            return
        try:
            connection.add_callback_threadsafe(channel.stop_consuming)
        except Exception:
            pass

    # -- one job -------------------------------------------------------------------------

    def _on_message(self, channel: Any, method: Any, props: pika.BasicProperties,
                    body: bytes) -> None:
        try:
            self._handle(channel, method, props, body)
        except pika.exceptions.AMQPError:
            raise                                   # the connection loop reconnects
        except Exception as e:                      # e.g. the grant store is down
            log.exception("broker %s: a job failed unexpectedly; retrying it later", self.name)
            self._retry(channel, method, props, body, dict(props.headers or {}),
                        f"internal error ({type(e).__name__})")

    def _handle(self, channel: Any, method: Any, props: pika.BasicProperties,
                body: bytes) -> None:
        headers = dict(props.headers or {})
        producer = self._producer(props)
        if self.agent is None:
            if method.routing_key in self.broker.consoles.agents:
                if producer is None:
                    return self._dead(channel, method, props, body, NO_USER_ID)
                # Misrouted while the broker was restarting: hand it to its agent's queue.
                channel.basic_publish("", queue_for(method.routing_key), body,
                                      self._vouched(props, headers, producer))
                channel.basic_ack(method.delivery_tag)
                return
            return self._dead(channel, method, props, body,
                              f"no agent serves routing key {method.routing_key!r}")
        try:
            job = jobs.parse(body)
        except jobs.JobRejected as e:
            return self._dead(channel, method, props, body, str(e))
        if producer is None:
            return self._dead(channel, method, props, body, NO_USER_ID, job_id=job["job_id"])
        owner = f"amqp:{producer}"
        # A message seen again (its ack was lost to a crash or a broker restart) is not
        # answered twice; a producer's deliberate replay is a new message and is answered.
        delivery = props.message_id or ""
        if delivery and self.broker.replied(job["job_id"], delivery):
            channel.basic_ack(method.delivery_tag)
            return
        try:
            reply = self.broker.run_job(jobs.run(self.broker.consoles, job, owner, self.agent,
                                                 admin=producer in self.broker.admins,
                                                 power=self.broker.power))
        except jobs.JobRejected as e:
            return self._dead(channel, method, props, body, str(e), job_id=job["job_id"])
        except (jobs.JobDeferred, TimeoutError) as e:
            return self._retry(channel, method, props, body, headers, str(e) or "timed out")
        self._reply(channel, props, reply)
        if delivery:
            self.broker.mark_replied(job["job_id"], delivery)
        channel.basic_ack(method.delivery_tag)
        self.broker.metrics.jobs.labels("done").inc()
        log.info("broker: job %s (%s) done: console %s", job["job_id"], job["action"],
                 reply.get("id"), extra={"console_id": reply.get("id")})

    def _producer(self, props: pika.BasicProperties) -> str | None:
        """The RabbitMQ user that published the job, as RabbitMQ vouches for it; None when
        the message does not say."""
        user = props.user_id or None
        if user is not None and user == self.broker.login:
            vouched = (props.headers or {}).get(PRODUCER)   # put there by a worker, or absent
            if isinstance(vouched, bytes):
                vouched = vouched.decode("utf-8", "replace")
            if isinstance(vouched, str) and vouched:
                return vouched
        return user

    def _vouched(self, props: pika.BasicProperties, headers: dict[str, Any],
                 producer: str) -> pika.BasicProperties:
        """Properties for a job this worker publishes again on *producer*'s behalf: its own
        login as user_id (RabbitMQ refuses any other), the producer in a header."""
        return pika.BasicProperties(
            headers={**headers, PRODUCER: producer}, user_id=self.broker.login,
            content_type=props.content_type, delivery_mode=2, message_id=props.message_id,
            correlation_id=props.correlation_id, reply_to=props.reply_to, app_id=props.app_id)

    def _reply(self, channel: Any, props: pika.BasicProperties, body: dict[str, Any]) -> None:
        """Publish the reply and wait for the broker's confirm (raises if it refuses)."""
        if not props.reply_to:
            return
        channel.basic_publish("", props.reply_to, json.dumps(body).encode(),
                              pika.BasicProperties(correlation_id=props.correlation_id,
                                                   content_type="application/json",
                                                   delivery_mode=2))

    def _dead(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes,
              reason: str, job_id: str | None = None) -> None:
        headers = {**(props.headers or {}), REASON: reason,
                   "x-guacbridge-routing-key": method.routing_key}
        producer = self._producer(props)    # who sent it, as vouched for; never as claimed
        headers.pop(PRODUCER, None)
        if producer is not None:
            headers[PRODUCER] = producer
        channel.basic_publish(DEAD, method.routing_key, body, pika.BasicProperties(
            headers=headers, content_type=props.content_type, delivery_mode=2,
            correlation_id=props.correlation_id, reply_to=props.reply_to))
        if props.reply_to:
            self._reply(channel, props, {"result": False, "details": reason,
                                         "job_id": job_id})
        channel.basic_ack(method.delivery_tag)
        self.broker.metrics.jobs.labels("dead").inc()
        log.warning("broker: job dead-lettered: %s", reason)

    def _retry(self, channel: Any, method: Any, props: pika.BasicProperties, body: bytes,
               headers: dict[str, Any], reason: str) -> None:
        attempts = int(headers.get(ATTEMPTS, 0)) + 1
        delays = self.broker.settings.broker_retry_delays
        if self.agent is None:      # the unrouted queue's jobs have no retry queue to wait in
            return self._dead(channel, method, props, body, reason)
        if attempts > len(delays):
            return self._dead(channel, method, props, body,
                              f"gave up after {attempts - 1} retries: {reason}")
        producer = self._producer(props)
        if producer is None:
            return self._dead(channel, method, props, body, NO_USER_ID)
        headers.update({ATTEMPTS: attempts, REASON: reason})
        channel.basic_publish("", retry_queue(self.agent, delays[attempts - 1]), body,
                              self._vouched(props, headers, producer))
        channel.basic_ack(method.delivery_tag)
        self.broker.metrics.jobs.labels("retried").inc()
        log.warning("broker: job will be retried in %.0f s (attempt %d): %s",
                    delays[attempts - 1], attempts, reason)


def run_with(parts: Parts, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Start a broker for the service's *parts* (and its readiness check); returns its stop
    function."""
    broker = Broker(parts.consoles, parts.events, parts.store, parts.metrics, loop,
                    parts.power)
    broker.start()

    async def ready() -> str | None:
        return None if broker.connected() else "not connected to RabbitMQ"
    parts.readiness["broker"] = ready
    return broker.stop
