"""One RabbitMQ connection with one channel in confirm mode, on the service's event loop.

pika's asyncio adapter speaks AMQP from the loop itself, so a job is handled where the core
runs: no thread to hop to and back, and everything published in one pass of the loop goes out
in one write. Its callbacks become awaitables here: a method and its ``-Ok`` (:meth:`call`),
a publish and its confirm (:meth:`publish`, a future), and the link's end (:attr:`closed`),
which fails whatever still waits on it with :class:`LinkLost`.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.asyncio_connection import AsyncioConnection


class LinkLost(Exception):
    """The connection or its channel closed; the text says why (never a password)."""


class Refused(Exception):
    """RabbitMQ nacked a message: it could not take it (an internal error of its own)."""


def parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    return params


def _why(reason: BaseException | None) -> str:
    if isinstance(reason, pika.exceptions.ChannelClosed | pika.exceptions.ConnectionClosed):
        return f"{reason.reply_code} {reason.reply_text}"
    return type(reason).__name__ if reason is not None else "closed"


class Link:
    """A connection and its one channel; confirms on. Open it with :meth:`open`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closed: asyncio.Future[str] = loop.create_future()   # why, once it has closed
        self.connection: AsyncioConnection | None = None
        self.channel: Any = None
        self._confirms: dict[int, asyncio.Future[None]] = {}    # publish number -> confirm
        self._published = 0
        self._waiting: set[asyncio.Future[Any]] = set()         # method calls awaiting -Ok

    @classmethod
    async def open(cls, url: str) -> Link:
        """Connect, open the channel, turn confirms on; LinkLost if any of it fails."""
        link = cls(asyncio.get_running_loop())
        opened: asyncio.Future[None] = link.loop.create_future()
        link._waiting.add(opened)           # a close before the open fails it too

        def on_open(_: Any) -> None:
            if not opened.done():
                opened.set_result(None)

        def on_open_error(_: Any, error: BaseException) -> None:
            if not opened.done():
                opened.set_exception(LinkLost(f"cannot connect ({_why(error)})"))

        link.connection = AsyncioConnection(
            parameters(url), on_open_callback=on_open, on_open_error_callback=on_open_error,
            on_close_callback=lambda _, reason: link._lost(reason), custom_ioloop=link.loop)
        try:
            await opened
        finally:
            link._waiting.discard(opened)
        link.channel = await link._answer(
            lambda done: link.connection.channel(on_open_callback=done))  # type: ignore[union-attr]
        link.channel.add_on_close_callback(lambda _, reason: link._lost(reason))
        await link.call(link.channel.confirm_delivery, link._on_confirm)
        return link

    @property
    def is_open(self) -> bool:
        return not self.closed.done()

    async def call(self, method: Callable[..., None], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, callback=…, **kwargs)`` (a channel method such as
        ``queue_declare``) and its answer frame, or LinkLost."""
        return await self._answer(lambda done: method(*args, callback=done, **kwargs))

    async def _answer(self, start: Callable[[Callable[[Any], None]], None]) -> Any:
        if self.closed.done():
            raise LinkLost(self.closed.result())
        answer: asyncio.Future[Any] = self.loop.create_future()
        self._waiting.add(answer)

        def done(frame: Any) -> None:
            if not answer.done():
                answer.set_result(frame)
        try:
            start(done)
            return await answer
        finally:
            self._waiting.discard(answer)

    def publish(self, exchange: str, routing_key: str, body: bytes,
                properties: pika.BasicProperties) -> asyncio.Future[None]:
        """Publish now; the future is done when RabbitMQ confirms the message (Refused if it
        nacks it, LinkLost if the link ends first)."""
        confirmed: asyncio.Future[None] = self.loop.create_future()
        if self.closed.done():
            confirmed.set_exception(LinkLost(self.closed.result()))
            return confirmed
        try:
            self.channel.basic_publish(exchange, routing_key, body, properties)
        except pika.exceptions.AMQPError as e:      # closing, a moment before it is closed
            confirmed.set_exception(LinkLost(type(e).__name__))
            return confirmed
        self._published += 1
        self._confirms[self._published] = confirmed
        return confirmed

    def ack(self, delivery_tag: int) -> None:
        """Acknowledge one delivery (not the ones before it: jobs end in any order)."""
        if not self.closed.done():
            self.channel.basic_ack(delivery_tag)

    def requeue(self, delivery_tag: int) -> None:
        """Give a delivery back unstarted, for another consumer."""
        if not self.closed.done():
            self.channel.basic_reject(delivery_tag, requeue=True)

    async def close(self) -> None:
        """Close the connection and wait until it is closed."""
        if self.connection is not None and not self.closed.done():
            try:
                self.connection.close()
            except pika.exceptions.AMQPError:
                pass
        await asyncio.shield(self.closed)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        refused = isinstance(method, pika.spec.Basic.Nack)
        if method.multiple:
            tags = [t for t in self._confirms if t <= method.delivery_tag]   # in order
        else:
            tags = [method.delivery_tag]
        for tag in tags:
            confirmed = self._confirms.pop(tag, None)
            if confirmed is None or confirmed.done():
                continue
            if refused:
                confirmed.set_exception(Refused("RabbitMQ refused the message (nack)"))
            else:
                confirmed.set_result(None)

    def _lost(self, reason: BaseException | None) -> None:
        """The channel or connection closed: everything still waiting fails."""
        if self.closed.done():
            return
        why = _why(reason)
        self.closed.set_result(why)
        for waiting in [*self._confirms.values(), *self._waiting]:
            if not waiting.done():
                waiting.set_exception(LinkLost(why))
        self._confirms.clear()
        if self.connection is not None and not (self.connection.is_closed
                                                or self.connection.is_closing):
            try:                # the channel alone closed (e.g. refused by the broker)
                self.connection.close()
            except pika.exceptions.AMQPError:
                pass
