"""The RabbitMQ side: consume console jobs, answer them, and lose none.

Topology (declared here, idempotently): the durable topic exchange ``guacbridge.jobs`` with
the agent type as routing key and one durable queue per agent type, so a slow agent cannot
starve a fast one; its alternate exchange catches jobs for agent types nobody serves. Jobs
that can never succeed go to ``guacbridge.dead`` with the reason in the
``x-guacbridge-reason`` header; passing failures wait in ``guacbridge.retry.<agent>.<ms>`` and
come back, a bounded number of times. Events (opened, extended, closed) go to the topic
exchange ``guacbridge.events``.

Each consumer has its own connection (amqp.py, on the service's event loop, where the core
runs) and up to ``broker.prefetch`` jobs in flight; several consumers per agent type, and
several workers on one queue, compete for jobs. A job is acknowledged only after its outcome
is stored and its reply confirmed by the broker, each on its own, in whatever order jobs end.
Jobs with the same ``job_id`` run one after another in the process (jobs.OneAtATime).

Who published a job is what RabbitMQ vouches for: the message's ``user_id`` property, which
RabbitMQ refuses to deliver unless it is the publisher's own login. The job's owner is
``amqp:<user_id>``; a message without it is dead-lettered, since nothing else (``app_id``,
the body) says who sent it. A job this worker publishes again (a retry, a misrouted job)
carries the worker's own login as ``user_id`` and the producer in ``x-guacbridge-producer``;
that header is believed only beside the worker's login, from nobody else.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pika

from . import amqp, jobs
from .amqp import Link, LinkLost
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
EVENTS_IN_FLIGHT = 256    # events published and not yet confirmed, at most
JSON = "application/json"


def queue_for(agent: str) -> str:
    return f"{JOBS}.{agent}"


def retry_queue(agent: str, delay: float) -> str:
    return f"guacbridge.retry.{agent}.{int(delay * 1000)}"


async def declare(link: Link, agents: list[str], retry_delays: tuple[float, ...]) -> None:
    """The whole topology; every declaration is idempotent."""
    channel, run = link.channel, link.call
    await run(channel.exchange_declare, UNROUTED, "fanout", durable=True)
    await run(channel.queue_declare, UNROUTED, durable=True)
    await run(channel.queue_bind, UNROUTED, UNROUTED)
    await run(channel.exchange_declare, JOBS, "topic", durable=True,
              arguments={"alternate-exchange": UNROUTED})
    for agent in agents:
        await run(channel.queue_declare, queue_for(agent), durable=True)
        await run(channel.queue_bind, queue_for(agent), JOBS, routing_key=agent)
    await run(channel.exchange_declare, DEAD, "fanout", durable=True)
    await run(channel.queue_declare, DEAD, durable=True)
    await run(channel.queue_bind, DEAD, DEAD)
    for agent in agents:
        for delay in retry_delays:
            # Jobs wait out the delay here, then dead-letter back to their agent's queue.
            await run(channel.queue_declare, retry_queue(agent, delay), durable=True,
                      arguments={"x-message-ttl": int(delay * 1000),
                                 "x-dead-letter-exchange": JOBS,
                                 "x-dead-letter-routing-key": agent})
    await run(channel.exchange_declare, EVENTS, "topic", durable=True)


def login_of(url: str) -> str | None:
    """The RabbitMQ user *url* logs in as (pika's ``guest`` when it names none); None for a
    login without a user name (EXTERNAL)."""
    return getattr(pika.URLParameters(url).credentials, "username", None) or None


class Broker:
    """All consumers of one process, plus the events publisher, on the service's loop."""

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
        self.one_at_a_time = jobs.OneAtATime()
        self.stopping = asyncio.Event()
        self.consumers: list[Consumer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.events = Events(self)

    def connected(self) -> bool:
        return any(c.link is not None and c.link.is_open for c in self.consumers)

    def start(self) -> None:
        """Start the consumers and the events publisher (on the loop, from the loop)."""
        agents = sorted(self.consoles.agents)
        concurrency = self.settings.broker_concurrency
        for agent in agents:
            for n in range(concurrency.get(agent, concurrency.get("*", 2))):
                self.consumers.append(Consumer(self, queue_for(agent), agent, f"{agent}-{n}"))
        self.consumers.append(Consumer(self, UNROUTED, None, "unrouted"))
        self.tasks = [self.loop.create_task(c.run(), name=f"broker-{c.name}")
                      for c in self.consumers]
        self.tasks.append(self.loop.create_task(self.events.run(), name="broker-events"))
        self.console_events.add_listener(self.events.add)
        log.info("broker: consuming %s with %d consumers, %d jobs in flight each",
                 ", ".join(agents), len(self.consumers) - 1, self.settings.broker_prefetch)

    async def aclose(self, timeout: float = 30.0) -> None:
        """Finish the jobs in flight, then close; unstarted jobs go back to the broker."""
        self.stopping.set()
        deadline = self.loop.time() + timeout
        consumers, events = self.tasks[:-1], self.tasks[-1]
        await asyncio.wait(consumers, timeout=timeout)
        self.events.closing.set()       # the jobs' last events are in its outbox by now
        self.events.wake.set()
        await asyncio.wait([events], timeout=max(0.1, deadline - self.loop.time()))
        pending = [task for task in self.tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    def stop(self, timeout: float = 30.0) -> None:
        """:meth:`aclose` from another thread (the service calls it off its loop)."""
        asyncio.run_coroutine_threadsafe(self.aclose(timeout), self.loop).result(timeout + 10)

    async def replied(self, job_id: str, message_id: str) -> bool:
        return await asyncio.to_thread(self.store.replied, job_id, message_id)

    async def mark_replied(self, job_id: str, message_id: str) -> None:
        await asyncio.to_thread(self.store.mark_replied, job_id, message_id, time.time())

    async def run_job(self, coro: Any) -> dict[str, Any]:
        """Run a core coroutine; past JOB_TIMEOUT the job is retried (the core's work goes
        on, and a repeat finds what it made)."""
        return await asyncio.wait_for(asyncio.shield(coro), JOB_TIMEOUT)

    async def pause(self, backoff: Backoff) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), backoff.next())
        except TimeoutError:
            pass


class Backoff:
    """0.5 s, doubling, at most 10 s, between reconnects."""

    def __init__(self) -> None:
        self.delay = 0.5

    def reset(self) -> None:
        self.delay = 0.5

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, 10.0)
        return delay


class Events:
    """Console events to ``guacbridge.events``, in the order they happened. Nothing waits
    for them: the core hands them over and goes on. They are published several at a time and
    kept until RabbitMQ confirms them; those a lost connection left unconfirmed are published
    again (at least once), up to MAX_PENDING_EVENTS kept while the broker is away."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.outbox: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self.sent: collections.deque[tuple[str, dict[str, Any], asyncio.Future[None]]] = \
            collections.deque()
        self.wake = asyncio.Event()
        self.closing = asyncio.Event()     # the consumers are done: publish the rest, end
        self.thread = threading.get_ident()     # the loop's: listeners are called on it

    def add(self, event: str, body: dict[str, Any]) -> None:
        """A ConsoleEvents listener."""
        if threading.get_ident() != self.thread:
            self.broker.loop.call_soon_threadsafe(self.add, event, body)
            return
        if len(self.outbox) + len(self.sent) >= MAX_PENDING_EVENTS:   # away for long
            (self.outbox or self.sent).popleft()
            log.warning("broker events: queue full, the oldest event was dropped")
        self.outbox.append((event, body))
        self.wake.set()

    async def run(self) -> None:
        backoff = Backoff()
        while not self.closing.is_set():
            link = None
            try:
                link = await Link.open(self.broker.url)
                await link.call(link.channel.exchange_declare, EVENTS, "topic", durable=True)
                backoff.reset()
                if await self._publish(link):
                    return
            except LinkLost as e:
                log.warning("broker events: %s; reconnecting", e)
            except amqp.Refused as e:
                log.warning("broker events: %s; reconnecting", e)
            finally:
                self._unsent()
                if link is not None:
                    await link.close()
            try:                # closing with RabbitMQ away: what is left is dropped
                await asyncio.wait_for(self.closing.wait(), backoff.next())
            except TimeoutError:
                pass

    async def _publish(self, link: Link) -> bool:
        """Publish until stopped and every event is confirmed (True) or the link ends."""
        link.closed.add_done_callback(lambda _: self.wake.set())
        while True:
            self.wake.clear()
            while self.sent and self.sent[0][2].done():
                self.sent.popleft()[2].result()                   # raises if it failed
            while self.outbox and len(self.sent) < EVENTS_IN_FLIGHT:
                event, body = self.outbox.popleft()
                confirmed = link.publish(EVENTS, f"console.{event}", json.dumps(body).encode(),
                                         pika.BasicProperties(content_type=JSON,
                                                              delivery_mode=2))
                confirmed.add_done_callback(lambda _: self.wake.set())
                self.sent.append((event, body, confirmed))
            if self.closing.is_set() and not self.outbox and not self.sent:
                return True
            if not link.is_open:
                raise LinkLost(link.closed.result())
            await self.wake.wait()

    def _unsent(self) -> None:
        """Events published but not confirmed go back to the front, in their order."""
        while self.sent:
            event, body, confirmed = self.sent.pop()
            if not confirmed.done() or confirmed.exception() is not None:
                self.outbox.appendleft((event, body))


class Consumer:
    def __init__(self, broker: Broker, queue: str, agent: str | None, name: str) -> None:
        self.broker = broker
        self.queue = queue
        self.agent = agent
        self.name = name
        self.link: Link | None = None
        self.jobs: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        backoff = Backoff()
        broker = self.broker
        while not broker.stopping.is_set():
            try:
                self.link = link = await Link.open(broker.url)
                await declare(link, sorted(broker.consoles.agents),
                              broker.settings.broker_retry_delays)
                await link.call(link.channel.basic_qos,
                                prefetch_count=broker.settings.broker_prefetch)
                await link.call(link.channel.basic_consume, self.queue, self._on_message)
                backoff.reset()
                log.debug("broker %s: consuming %s", self.name, self.queue)
                stopping: asyncio.Future[Any] = asyncio.ensure_future(broker.stopping.wait())
                await asyncio.wait([link.closed, stopping],
                                   return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if broker.stopping.is_set():
                    await self._finish(link)
                    return
                log.warning("broker %s: connection lost (%s); reconnecting", self.name,
                            link.closed.result())
            except LinkLost as e:
                if broker.stopping.is_set():
                    return
                log.warning("broker %s: %s; reconnecting", self.name, e)
            except Exception:
                # Never let a consumer die: the queue would lose a worker silently.
                log.exception("broker %s: unexpected error; reconnecting", self.name)
            if self.link is not None:
                await self.link.close()
            await broker.pause(backoff)

    async def _finish(self, link: Link) -> None:
        """Stop taking jobs, finish those started, close."""
        try:
            for tag in list(link.channel.consumer_tags):
                await link.call(link.channel.basic_cancel, tag)
        except LinkLost:
            pass
        if self.jobs:
            await asyncio.wait(set(self.jobs))
        await link.close()

    # -- one job -------------------------------------------------------------------------

    def _on_message(self, channel: Any, method: Any, props: pika.BasicProperties,
                    body: bytes) -> None:
        link = self.link
        assert link is not None
        if self.broker.stopping.is_set():      # not started: another consumer takes it
            link.requeue(method.delivery_tag)
            return
        task = self.broker.loop.create_task(self._job(link, method, props, body))
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)

    async def _job(self, link: Link, method: Any, props: pika.BasicProperties,
                   body: bytes) -> None:
        try:
            await self._handle(link, method, props, body)
        except LinkLost:
            return                  # not acknowledged: RabbitMQ delivers it again
        except Exception as e:      # e.g. the grant store is down
            log.exception("broker %s: a job failed unexpectedly; retrying it later", self.name)
            try:
                await self._retry(link, method, props, body, dict(props.headers or {}),
                                  f"internal error ({type(e).__name__})")
            except LinkLost:
                return
            except Exception:
                log.exception("broker %s: could not retry a job; it comes back", self.name)

    async def _handle(self, link: Link, method: Any, props: pika.BasicProperties,
                      body: bytes) -> None:
        headers = dict(props.headers or {})
        producer = self._producer(props)
        if self.agent is None:
            if method.routing_key in self.broker.consoles.agents:
                if producer is None:
                    return await self._dead(link, method, props, body, NO_USER_ID)
                # Misrouted while the broker was restarting: hand it to its agent's queue.
                await link.publish("", queue_for(method.routing_key), body,
                                   self._vouched(props, headers, producer))
                link.ack(method.delivery_tag)
                return
            return await self._dead(link, method, props, body,
                                    f"no agent serves routing key {method.routing_key!r}")
        try:
            job = jobs.parse(body)
        except jobs.JobRejected as e:
            return await self._dead(link, method, props, body, str(e))
        if producer is None:
            return await self._dead(link, method, props, body, NO_USER_ID,
                                    job_id=job["job_id"])
        async with self.broker.one_at_a_time.hold(job["job_id"]):
            await self._run(link, method, props, body, headers, job, producer)

    async def _run(self, link: Link, method: Any, props: pika.BasicProperties, body: bytes,
                   headers: dict[str, Any], job: dict[str, Any], producer: str) -> None:
        broker = self.broker
        # A message seen again (its ack was lost to a crash or a broker restart) is not
        # answered twice; a producer's deliberate replay is a new message and is answered.
        delivery = props.message_id or ""
        if delivery and await broker.replied(job["job_id"], delivery):
            link.ack(method.delivery_tag)
            return
        assert self.agent is not None
        try:
            reply = await broker.run_job(jobs.run(broker.consoles, job, f"amqp:{producer}",
                                                  self.agent, admin=producer in broker.admins,
                                                  power=broker.power))
        except jobs.JobRejected as e:
            return await self._dead(link, method, props, body, str(e), job_id=job["job_id"])
        except (jobs.JobDeferred, TimeoutError) as e:
            return await self._retry(link, method, props, body, headers,
                                     str(e) or "timed out")
        await self._reply(link, props, reply)
        if delivery:
            await broker.mark_replied(job["job_id"], delivery)
        link.ack(method.delivery_tag)
        broker.metrics.jobs.labels("done").inc()
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

    def _reply(self, link: Link, props: pika.BasicProperties,
               body: dict[str, Any]) -> asyncio.Future[None]:
        """Publish the reply; the future is its confirm (Refused if RabbitMQ refuses it)."""
        if not props.reply_to:
            done: asyncio.Future[None] = self.broker.loop.create_future()
            done.set_result(None)
            return done
        return link.publish("", props.reply_to, json.dumps(body).encode(),
                            pika.BasicProperties(correlation_id=props.correlation_id,
                                                 content_type=JSON, delivery_mode=2))

    async def _dead(self, link: Link, method: Any, props: pika.BasicProperties, body: bytes,
                    reason: str, job_id: str | None = None) -> None:
        headers = {**(props.headers or {}), REASON: reason,
                   "x-guacbridge-routing-key": method.routing_key}
        producer = self._producer(props)    # who sent it, as vouched for; never as claimed
        headers.pop(PRODUCER, None)
        if producer is not None:
            headers[PRODUCER] = producer
        for failed in await asyncio.gather(
                link.publish(DEAD, method.routing_key, body, pika.BasicProperties(
                    headers=headers, content_type=props.content_type, delivery_mode=2,
                    correlation_id=props.correlation_id, reply_to=props.reply_to)),
                self._reply(link, props, {"result": False, "details": reason,
                                          "job_id": job_id}),
                return_exceptions=True):
            if failed is not None:
                raise failed
        link.ack(method.delivery_tag)
        self.broker.metrics.jobs.labels("dead").inc()
        log.warning("broker: job dead-lettered: %s", reason)

    async def _retry(self, link: Link, method: Any, props: pika.BasicProperties, body: bytes,
                     headers: dict[str, Any], reason: str) -> None:
        attempts = int(headers.get(ATTEMPTS, 0)) + 1
        delays = self.broker.settings.broker_retry_delays
        if self.agent is None:      # the unrouted queue's jobs have no retry queue to wait in
            return await self._dead(link, method, props, body, reason)
        if attempts > len(delays):
            return await self._dead(link, method, props, body,
                                    f"gave up after {attempts - 1} retries: {reason}")
        producer = self._producer(props)
        if producer is None:
            return await self._dead(link, method, props, body, NO_USER_ID)
        headers.update({ATTEMPTS: attempts, REASON: reason})
        await link.publish("", retry_queue(self.agent, delays[attempts - 1]), body,
                           self._vouched(props, headers, producer))
        link.ack(method.delivery_tag)
        self.broker.metrics.jobs.labels("retried").inc()
        log.warning("broker: job will be retried in %.0f s (attempt %d): %s",
                    delays[attempts - 1], attempts, reason)


def run_with(parts: Parts, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Start a broker for the service's *parts* (and its readiness check); returns its stop
    function, to be called off the loop."""
    broker = Broker(parts.consoles, parts.events, parts.store, parts.metrics, loop,
                    parts.power)
    broker.start()

    async def ready() -> str | None:
        return None if broker.connected() else "not connected to RabbitMQ"
    parts.readiness["broker"] = ready
    return broker.stop
