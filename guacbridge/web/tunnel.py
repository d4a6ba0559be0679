"""The WebSocket tunnel: moves Guacamole instructions between one browser and one guacd.

It speaks guacamole-common-js's WebSocketTunnel protocol (subprotocol ``guacamole``; the
tunnel id first; pings answered here, never forwarded) and nothing else: tokens are the
core's business (``Consoles.start_session``), the handshake is ``guacd.connect``'s.

Hot path: each read from guacd (up to 64 KiB) becomes at most one WebSocket message holding
the whole instructions it completed, found by the Framer without building objects. Awaiting
each write stops reading from guacd while the browser is slow, so buffers stay bounded.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable

import tornado.websocket

from .. import guacd, logs, parameters, protocol
from ..consoles import ConsoleError, Consoles
from ..grants import Grant, Refused
from ..guacd import Capabilities, GuacdConnection, GuacdError
from .access import RedactedLogging

log = logging.getLogger(__name__)

# Guacamole status → WebSocket close code (guacamole-facts.md, section 3).
_WS_CODES = {0x0000: 1000, 0x0100: 1011, 0x0200: 1011, 0x0201: 1008, 0x0202: 1011,
             0x0203: 1011, 0x0204: 1002, 0x0205: 1008, 0x0206: 1002, 0x0207: 1011,
             0x0208: 1011, 0x0209: 1008, 0x020A: 1002, 0x020B: 1002, 0x0300: 1002,
             0x0301: 1008, 0x0303: 1008, 0x0308: 1002, 0x030D: 1009, 0x030F: 1003,
             0x031D: 1008}
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


def websocket_code(status: int) -> int:
    return _WS_CODES.get(status, 1011)


class TunnelHandler(RedactedLogging, tornado.websocket.WebSocketHandler):
    def initialize(self, consoles: Consoles) -> None:
        self.consoles = consoles
        self.settings_ = consoles.settings
        self.tunnel_id = str(uuid.uuid4())
        self.grant: Grant | None = None
        self.conn: GuacdConnection | None = None
        self.inbound = protocol.Framer()
        self.tasks: list[asyncio.Task] = []
        self.end_reason: str | None = None
        self.unregister = lambda: None
        self.bytes_out = self.bytes_in = 0
        self.end_recorded = False
        self.opened_at = time.monotonic()

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "guacamole" if "guacamole" in subprotocols else None

    def get_compression_options(self) -> None:
        return None   # blobs are already compressed images; deflate only burns CPU

    async def open(self) -> None:
        self.set_nodelay(True)
        self.write_message(protocol.encode("", self.tunnel_id))
        arg = self.get_query_argument
        try:
            caps = Capabilities(width=_int(arg("width", "1024"), 1, 8192),
                                height=_int(arg("height", "768"), 1, 8192),
                                dpi=_int(arg("dpi", "96"), 24, 960),
                                timezone=_timezone(arg("timezone", "")))
            layout = _layout(arg("layout", ""))
        except ValueError as e:
            return self.fail(guacd.CLIENT_BAD_REQUEST, str(e))
        try:
            if arg("session", ""):
                grant = await self.consoles.resume_session(arg("console", ""), arg("session"),
                                                           self.tunnel_id)
            else:
                grant = await self.consoles.start_session(arg("token", ""),
                                                          arg("extra", "") or None,
                                                          self.tunnel_id)
        except Refused as e:
            log.info("tunnel refused: %s", e.reason)
            return self.fail(guacd.CLIENT_UNAUTHORIZED, e.reason)
        except ConsoleError as e:     # the grant store is down: worth a retry later
            log.warning("tunnel not opened: %s", e.details)
            return self.fail(guacd.UPSTREAM_UNAVAILABLE, "the console service cannot reach"
                                                         " its database; try again shortly")
        self.grant = grant
        logs.console_id.set(grant.id)     # on every log line of this tunnel from here on
        if self.end_reason is not None:   # the browser left while the token was checked
            return await self._record_end()
        caps.name = grant.user
        params = grant.target.params
        if layout and grant.target.protocol == "rdp":
            params = {**params, "server-layout": layout}
        try:
            conn = await guacd.connect_any(self.settings_.guacd, grant.target.protocol,
                                           params, caps, self.settings_.handshake_timeout)
        except GuacdError as e:
            log.warning("console %s: guacd handshake failed: %s", grant.id, e)
            return self.fail(e.status, e.message, f"guacd: {e.message}")
        if self.end_reason is not None:   # the browser left during the handshake
            conn.close()
            return await self._record_end()
        self.conn = conn
        self.consoles.metrics.handshake.observe(conn.handshake_seconds)
        self.unregister = self.consoles.attach(grant.id, self.stop, grant.deadline)
        log.info("console %s: tunnel up through guacd %s:%d (handshake %.0f ms, protocol %s)",
                 grant.id, *conn.address, conn.handshake_seconds * 1000,
                 "%d.%d.%d" % conn.version)
        self.tasks = [asyncio.ensure_future(self._from_guacd(conn))]

    async def _from_guacd(self, conn: GuacdConnection) -> None:
        """guacd → browser, in whole instructions, one message per read.

        guacd's ``error`` ends the connection, but guacd 1.3.0 keeps the socket open until
        its client writes again, so the tunnel closes as soon as it has forwarded one."""
        status, message = guacd.SUCCESS, ""
        try:
            text = conn.pending
            if text:
                await self.write_message(text)
                status, message = _error_in(text)
            read, feed = conn.reader.read, conn.framer.feed
            grant = self.grant
            assert grant is not None            # set before this task starts
            up = grant.up_at is not None
            while not status:
                data = await read(guacd.READ_SIZE)
                if not data:
                    break
                text = feed(data)
                if text:
                    self.bytes_out += len(text)
                    await self.write_message(text)
                    if "5.error," in text:
                        status, message = _error_in(text)
                    elif not up and "4.sync," in text:
                        # guacd's ready came before the server was reached: the first
                        # frame is when the console is really up.
                        up = True
                        asyncio.ensure_future(self.consoles.console_up(grant.id))
        except tornado.websocket.WebSocketClosedError:
            return
        except protocol.ProtocolError as e:
            return self.fail(guacd.UPSTREAM_ERROR, "guacd sent malformed data", f"guacd: {e}")
        except (ConnectionError, OSError):
            pass
        self.fail(status, message, f"guacd: {message}" if status else "guacd ended the session",
                  send_error=False)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """browser → guacd; internal instructions (ping) are answered here.

        Not a coroutine: Tornado would make a task of each message (a ping every 500 ms
        from every browser). Only when guacd is slow to read does it return the drain,
        which Tornado awaits before reading the browser's next message."""
        if self.conn is None or self.end_reason is not None:
            return None
        try:
            text = self.inbound.feed(message)
        except protocol.ProtocolError as e:
            return self.fail(guacd.CLIENT_BAD_REQUEST, f"malformed instruction from browser: {e}")
        if not text:
            return None
        self.bytes_in += len(text)
        if text.startswith("0.") or ";0." in text:
            forward = []
            for raw in protocol.split(text):
                if not protocol.is_internal(raw):
                    forward.append(raw)
                elif protocol.parse(raw)[1:2] == ["ping"]:
                    self.write_message(raw)
            text = "".join(forward)
            if not text:
                return None
        writer = self.conn.writer
        if writer.is_closing():
            return self.fail(guacd.UPSTREAM_ERROR, "the connection to guacd was lost")
        writer.write(text.encode())
        return self._drain(writer) if writer.transport.get_write_buffer_size() else None

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            self.fail(guacd.UPSTREAM_ERROR, "the connection to guacd was lost")

    def stop(self, reason: str) -> None:
        """Called by the core: close, sweeper, reconnect elsewhere, the deadline."""
        self.fail(guacd.SESSION_CLOSED, f"The console session has ended: {reason}.", reason)

    def fail(self, status: int, message: str, reason: str | None = None,
             send_error: bool = True) -> None:
        """Tell the browser why (an ``error`` instruction), record the end, then close the
        WebSocket with the status, so that whoever sees the close also sees the record."""
        if self.end_reason is not None:
            return
        self.end_reason = reason or message
        if send_error and status != guacd.SUCCESS and self.ws_connection is not None:
            try:
                self.write_message(protocol.encode("error", message, status))
            except tornado.websocket.WebSocketClosedError:
                pass
        self._release()
        asyncio.ensure_future(self._end(status))

    def on_close(self) -> None:
        if self.end_reason is None:
            self.end_reason = "browser left"
            self._release()
            asyncio.ensure_future(self._record_end())

    def _release(self) -> None:
        """Let go of guacd, the core's registry and the pumps."""
        self.unregister()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def _end(self, status: int) -> None:
        await self._record_end()
        if self.ws_connection is not None:
            self.close(websocket_code(status), str(status))

    async def _record_end(self) -> None:
        grant = self.grant
        if grant is None or self.end_recorded:
            return
        self.end_recorded = True
        reason = self.end_reason or "closed"
        self.consoles.metrics.tunnel_bytes.labels("to_browser").inc(self.bytes_out)
        self.consoles.metrics.tunnel_bytes.labels("to_guacd").inc(self.bytes_in)
        try:
            await self.consoles.end_tunnel(grant, self.tunnel_id, reason)
        except Exception:
            log.exception("console %s: could not record the tunnel's end", grant.id)
        log.info("console %s: tunnel closed after %.1f s (%d chars out, %d in): %s",
                 grant.id, time.monotonic() - self.opened_at, self.bytes_out,
                 self.bytes_in, reason)


def _int(value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value[:20]!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low}..{high}")
    return number


def _layout(value: str) -> str | None:
    if not value:
        return None
    if value not in parameters.RDP_LAYOUTS:
        raise ValueError(f"unknown keyboard layout {value[:32]!r}")
    return value


def _timezone(value: str) -> str | None:
    if not value:
        return None
    if not _TIMEZONE.match(value):
        raise ValueError("timezone must be an IANA name such as Europe/Berlin")
    return value


def _error_in(text: str) -> tuple[int, str]:
    """The status and message of an ``error`` instruction in *text*, if there is one."""
    for raw in protocol.split(text):
        if raw.startswith("5.error,"):
            elements = protocol.parse(raw)
            if len(elements) >= 3 and elements[2].isdigit():
                return int(elements[2]), elements[1]
            return guacd.SERVER_ERROR, elements[1] if len(elements) > 1 else "guacd error"
    return guacd.SUCCESS, ""
