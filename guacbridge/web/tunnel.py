"""The WebSocket tunnel: moves Guacamole instructions between one browser and one guacd.

It speaks guacamole-common-js's WebSocketTunnel protocol (subprotocol ``guacamole``; the
tunnel id first; pings answered here, never forwarded) and nothing else: tokens are the
sessions' business (``Sessions.start``), the handshake is the guacd pool's.

Hot path: each read from guacd (up to 64 KiB) becomes at most one WebSocket message holding
the whole instructions it completed, found by the Framer without building objects. Awaiting
each write stops reading from guacd while the browser is slow, so buffers stay bounded.

The browser's side is hostile until proven otherwise (:func:`from_browser`): a message is
checked whole before any of it goes to guacd, and a bad one ends the tunnel with
CLIENT_OVERRUN (over a limit) or CLIENT_BAD_REQUEST (malformed), CLIENT_BAD_TYPE for binary.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable

import tornado.websocket

from .. import background, guacd, logs, parameters, protocol
from ..audit import Client, LiveTunnel
from ..config import Settings
from ..consoles import Consoles
from ..errors import ConsoleError
from ..grants import Grant
from ..guacd import GuacdConnection
from ..guacd_pool import GuacdPool
from ..limits import Limited, Throttle
from ..live import LiveTunnels
from ..metrics import Metrics
from ..recordings import UNRECORDED, Expected, Recordings, shows_desktop
from ..sessions import SECRET_OPCODE, Sessions
from ..shares import Shares, Viewer
from ..status import Status
from ..targets import Targets
from . import admission, idle, origins
from .access import RedactedLogging
from .drain import RESTART_OPCODE, Drain
from .frames import BatchedFrames
from .idle import INPUT, INPUT_INSIDE, IdleWatch
from .tunnel_input import (
    DISCONNECT,
    MAX_MESSAGE,
    display,
    ends_with_disconnect,
    error_in,
    from_browser,
    has_opcode,
    required_refusal,
)

log = logging.getLogger(__name__)


def websocket_code(status: int) -> int:
    """The close code for *status*, any code at all (see :meth:`Status.of`)."""
    return Status.of(status).websocket


class TunnelHandler(RedactedLogging, tornado.websocket.WebSocketHandler):
    # Tornado's own bound on a frame, in bytes: any message of MAX_MESSAGE code points fits,
    # so the larger ones get our CLIENT_OVERRUN; past this Tornado closes with 1009 itself.
    max_message_size = 4 * MAX_MESSAGE

    def initialize(self, consoles: Consoles, sessions: Sessions, live: LiveTunnels,
                   pool: GuacdPool, shares: Shares, metrics: Metrics, settings: Settings,
                   drain: Drain, connect_throttle: Throttle, recordings: Recordings,
                   targets: Targets) -> None:
        self.consoles = consoles
        self.sessions = sessions
        self.live = live
        self.pool = pool
        self.shares = shares
        self.metrics = metrics
        self.settings_ = settings
        self.drain = drain
        self.throttle = connect_throttle
        self.recordings = recordings
        self.targets = targets    # where a new guacd connection goes (targets.py)
        self.recording: Expected | None = None   # guacd's file for it, until the first frame
        self.viewer: Viewer | None = None    # set when this tunnel joins through a share
        self.connection_id = ""
        self.tunnel_id = str(uuid.uuid4())
        self.grant: Grant | None = None
        self.conn: GuacdConnection | None = None
        self.guacd_lost = False    # guacd's connection died under us: its probe runs now
        self.inbound = protocol.Framer()
        self.tasks: list[asyncio.Task] = []
        self.end_reason: str | None = None
        self.unregister = lambda: None
        self.bytes_out = self.bytes_in = 0
        self.end_recorded = False
        self.opened_at = time.monotonic()
        self.idle: IdleWatch | None = None       # the owner's input counts, when configured

    def check_origin(self, origin: str) -> bool:
        """Only the service's own pages and the configured origins (web/origins.py)."""
        if origins.allowed(origin, f"{self.request.protocol}://{self.request.host}",
                           self.settings_.origins):
            return True
        log.warning("tunnel refused: origin %r is not allowed (allowed_origins)", origin[:100])
        return False

    async def get(self, *args: str, **kwargs: str) -> None:
        """Tornado's upgrade, but a refused origin gets our JSON answer, not a text one."""
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            return origins.refuse(self, origin)
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "guacamole" if "guacamole" in subprotocols else None

    def get_compression_options(self) -> None:
        return None   # blobs are already compressed images; deflate only burns CPU

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        """Tornado's protocol, with the browser's frames read in batches (web/frames.py)."""
        protocol = super().get_websocket_protocol()
        if type(protocol) is tornado.websocket.WebSocketProtocol13:
            return BatchedFrames(self, False, protocol.params)
        return protocol

    async def open(self) -> None:
        """Who is connecting, a guacd connection for them (both web/admission.py), then the
        pumps: each step ends the tunnel with a status the browser shows when it cannot go
        on."""
        self.set_nodelay(True)
        self.write_message(protocol.encode("", self.tunnel_id))
        try:    # before the token is looked at: guessing is slowed, no token is spent
            self.throttle.check_address(self.request.remote_ip)
        except Limited as e:
            return self.fail(Status.CLIENT_TOO_MANY, e.details)
        try:
            caps, layout = display(self.get_query_argument)
        except ValueError as e:
            return self.fail(Status.CLIENT_BAD_REQUEST, str(e))
        try:
            who = await admission.admit(self.get_query_argument, self.shares, self.sessions,
                                        self.tunnel_id, self._client())
        except admission.TurnedAway as e:
            return self.fail(e.status, e.message, e.reason)
        self.grant = grant = who.grant
        self.viewer = who.viewer
        if who.secret is not None:    # rotated by this resume (sessions.py says why)
            self._send_secret(who.secret)
        logs.console_id.set(grant.id)     # on every log line of this tunnel from here on
        if self.end_reason is not None:   # the browser left while the token was checked
            return await self._record_end()
        caps.name = grant.user
        try:
            conn, self.recording = await admission.connect(
                self.pool, grant, self.viewer, caps, layout, self.settings_.handshake_timeout,
                self.targets, self.recordings)
        except admission.TurnedAway as e:
            return self.fail(e.status, e.message, e.reason)
        if self.end_reason is not None:   # the browser left during the handshake
            self.pool.release(conn)
            return await self._record_end()
        await self._register(grant, conn)

    async def _register(self, grant: Grant, conn: GuacdConnection) -> None:
        """The tunnel is up: whatever ends consoles (and restarts) can reach it, and the
        pumps run."""
        self.conn = conn
        self.connection_id = conn.connection_id
        self.metrics.handshake.observe(conn.handshake_seconds)
        undrain = self.drain.add(self)
        if self.viewer is not None:
            detach = self.shares.attach_viewer(grant.id, self.viewer.share.id, self.fail)
        else:
            detach = self.live.attach(grant.id, self.stop, LiveTunnel(
                self.tunnel_id, grant.id, self._client(), self.consoles.clock(),
                lambda: (self.bytes_out, self.bytes_in)), grant.deadline)

        def unregister() -> None:
            detach()
            undrain()
        self.unregister = unregister
        log.info("console %s: tunnel up through guacd %s:%d (handshake %.0f ms, protocol %s)",
                 grant.id, *conn.address, conn.handshake_seconds * 1000,
                 conn.version.number)
        # The live-tunnel registry watches owners' deadlines and closes for all tunnels at
        # once; a viewer also watches its share, which may be revoked on another instance.
        self.tasks = [asyncio.ensure_future(self._from_guacd(conn))]
        if self.viewer is not None:
            self.tasks.append(asyncio.ensure_future(
                self.shares.watch_viewer(self.viewer, self.fail, self.stop)))
        else:    # the desktop flows meanwhile: where shares join needs no hurry
            try:
                await self.shares.owner_connected(grant.id, conn.address, conn.connection_id)
            except ConsoleError as e:     # the console works; only sharing it does not
                log.warning("console %s: cannot be shared now: %s", grant.id, e.details)
        if self.settings_.idle_timeout and self.viewer is None:
            self.idle = IdleWatch(self.settings_.idle_timeout, self.settings_.idle_warning,
                                  lambda left: self._say(idle.warning(left)), self._end_idle)
            self.idle.start()

    async def _from_guacd(self, conn: GuacdConnection) -> None:
        """guacd → browser, in whole instructions, one message per read.

        guacd's ``error`` ends the connection, but guacd 1.3.0 keeps the socket open until
        its client writes again, so the tunnel closes as soon as it has forwarded one; the
        same for ``disconnect``, guacd's end of a session (an SSH ``exit``). A stream that
        stops without either (guacd killed, the network gone) is an UPSTREAM_ERROR that the
        browser sees.

        Endings are read from whole instructions: the cheap tests on the chunk's text only
        say where to look (a desktop named ``ab10.disconnect`` ends a chunk the same way)."""
        status, message = Status.SUCCESS, ""
        goodbye = False
        # "prompt": false: guacd's `required` (it waits for answers, forever) is answered
        # here with an error, never forwarded; the cheap test only says where to look.
        no_prompt = self.grant is not None and parameters.NO_PROMPT in self.grant.target.params
        try:
            pending = conn.pending       # what the handshake read past guacd's ready
            read, feed = conn.reader.read, conn.framer.feed
            grant = self.grant
            assert grant is not None            # set before this task starts
            up = grant.up_at is not None or self.viewer is not None
            while not status:
                if pending:
                    text, pending = pending, ""
                else:
                    data = await read(guacd.READ_SIZE)
                    if not data:
                        break
                    text = feed(data)
                if no_prompt and "8.required," in text and has_opcode(text, "required"):
                    return self.fail(Status.CLIENT_UNAUTHORIZED, *required_refusal(text))
                if text and self.recording is not None and not await self._recorded(text):
                    return
                if text:
                    self.bytes_out += len(text)
                    await self.write_message(text)
                    if "5.error," in text:
                        status, message = error_in(text)
                    elif text.endswith(DISCONNECT) and ends_with_disconnect(text):
                        goodbye = True     # guacd's last words; it leaves the socket open
                        break
                    elif not up and "4.sync," in text and has_opcode(text, "sync"):
                        # guacd's ready came before the server was reached: the first
                        # frame is when the console is really up.
                        up = True
                        background.soon(self.sessions.up(grant.id))
        except tornado.websocket.WebSocketClosedError:
            return
        except protocol.ProtocolError as e:
            return self.fail(Status.UPSTREAM_ERROR, "guacd sent malformed data", f"guacd: {e}")
        except (ConnectionError, OSError):
            pass
        if not status and not goodbye:
            return self._lost()
        # guacd's own error (or its goodbye) has reached the browser already
        self.end(status, f"guacd: {message}" if status else "guacd ended the session")

    async def _recorded(self, text: str) -> bool:
        """Before *text* showing anything of the desktop reaches the browser (the first
        frame, or its images before its sync): is guacd recording it (Recordings.verify)?
        False ends the tunnel: with policy always the browser sees an error, never the
        desktop."""
        expected = self.recording
        if expected is None or not shows_desktop(text):
            return True
        self.recording = None
        why = await self.recordings.verify(expected)
        if why is not None:
            self.fail(Status.SERVER_ERROR, UNRECORDED, why)
        return why is None

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """browser → guacd; internal instructions (ping) are answered here.

        Not a coroutine: Tornado would make a task of each message (a ping every 500 ms
        from every browser). Only when guacd is slow to read does it return the drain,
        which Tornado awaits before reading the browser's next message."""
        if self.conn is None or self.end_reason is not None:
            return None
        if isinstance(message, bytes):
            self.fail(Status.CLIENT_BAD_TYPE, "binary WebSocket messages are not accepted:"
                                              " send instructions as text")
            return None
        if len(message) > MAX_MESSAGE:
            self.fail(Status.CLIENT_OVERRUN,
                      f"message from browser longer than {MAX_MESSAGE} characters")
            return None
        try:
            data, replies = from_browser(self.inbound, message)
        except protocol.ProtocolLimit as e:
            self.fail(Status.CLIENT_OVERRUN, f"instruction from browser over a limit: {e}")
            return None
        except protocol.ProtocolError as e:
            self.fail(Status.CLIENT_BAD_REQUEST, f"malformed instruction from browser: {e}")
            return None
        reply = None
        if replies:
            try:
                reply = self.write_message(replies)
            except tornado.websocket.WebSocketClosedError:
                return None
        if not data or self.conn is None:
            return self._echoed(reply)
        self.bytes_in += len(data)
        if self.idle is not None and (data.startswith(INPUT)
                                      or any(opcode in data for opcode in INPUT_INSIDE)):
            self.idle.last_input = time.monotonic()
        writer = self.conn.writer
        if writer.is_closing():
            self._lost()
            return None
        writer.write(data)
        if writer.transport.get_write_buffer_size():
            return self._drain(writer)
        return self._echoed(reply)

    def _echoed(self, reply: Awaitable[None] | None) -> Awaitable[None] | None:
        """Wait for a ping's echo only while the browser is not reading what we send: a
        client that floods pings and reads nothing then stalls itself, not our memory."""
        stream = self.ws_connection.stream if self.ws_connection is not None else None
        if reply is None or stream is None or not stream.writing():
            return None
        return self._await_echo(reply)

    async def _await_echo(self, reply: Awaitable[None]) -> None:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            await reply

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            self._lost()

    def _lost(self) -> None:
        self.guacd_lost = True
        self.fail(Status.UPSTREAM_ERROR, "The connection to guacd was lost.",
                  "guacd: connection lost")

    def _client(self) -> Client:
        return Client(self.request.remote_ip, self.request.headers.get("User-Agent"))

    def _say(self, instruction: str) -> None:
        """An instruction of our own to the browser, unless it has gone already."""
        if self.ws_connection is not None:
            with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                self.write_message(instruction)

    def _end_idle(self, reason: str) -> None:
        grant = self.grant
        self.fail(Status.SESSION_TIMEOUT, f"The console was closed: {reason}.", reason)
        if grant is not None:
            background.soon(self.consoles.end(grant.id, reason))

    def stop(self, reason: str) -> None:
        """Called by the core: close, sweeper, reconnect elsewhere, the deadline."""
        self.fail(Status.SESSION_CLOSED, f"The console session has ended: {reason}.", reason)

    def _send_secret(self, secret: str) -> None:
        """The page's reconnect secret was rotated by this resume: the page gets the new one
        here, never in a URL (sessions.py says why and what if it never arrives)."""
        self._say(protocol.encode(SECRET_OPCODE, secret))

    def announce_restart(self, notice: str) -> None:
        """The service is restarting: the page moves to a new tunnel (web/drain.py)."""
        if self.end_reason is None:
            self._say(protocol.encode(RESTART_OPCODE, notice))

    def close_for_restart(self) -> None:
        self.fail(Status.UPSTREAM_UNAVAILABLE, "The console service is restarting; reconnect.",
                  "the console service is shutting down")

    def fail(self, status: int, message: str, reason: str | None = None) -> None:
        """End the tunnel for a failure: tell the browser why (an ``error`` instruction with
        *status* and *message*), then :meth:`end`."""
        if self.end_reason is not None:
            return
        self._say(protocol.encode("error", message, status))
        self.end(status, reason or message)

    def end(self, status: int, reason: str) -> None:
        """End the tunnel (the first call counts): let go of guacd, record the end, then
        close the WebSocket with *status*'s close code, so that whoever sees the close also
        sees the record."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self._release()
        background.soon(self._end(status))

    def on_close(self) -> None:
        if self.end_reason is None:
            self.end_reason = "browser left"
            self._release()
            background.soon(self._record_end())

    def _release(self) -> None:
        """Let go of guacd, the core's registry and the pumps."""
        self.unregister()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.idle is not None:
            self.idle.cancel()
        if self.conn is not None:
            # guacd 1.3.0 does not notice a closed socket until its 15 s user timeout, and
            # keeps the connection (and its recording) open that long: say goodbye.
            with contextlib.suppress(Exception):
                self.conn.writer.write(DISCONNECT.encode())
            self.pool.release(self.conn, lost=self.guacd_lost)
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
        self.metrics.tunnel_bytes.labels("to_browser").inc(self.bytes_out)
        self.metrics.tunnel_bytes.labels("to_guacd").inc(self.bytes_in)
        try:
            if self.viewer is not None:     # a viewer leaving never ends the console
                await self.shares.viewer_left(self.viewer.share, self.tunnel_id, reason)
            else:
                if self.connection_id:
                    await self.shares.owner_left(grant.id, self.connection_id)
                await self.sessions.tunnel_ended(grant, self.tunnel_id, reason,
                                                 bytes_out=self.bytes_out,
                                                 bytes_in=self.bytes_in,
                                                 seconds=time.monotonic() - self.opened_at)
        except Exception:
            log.exception("console %s: could not record the tunnel's end", grant.id)
        log.info("console %s: tunnel closed after %.1f s (%d chars out, %d in): %s",
                 grant.id, time.monotonic() - self.opened_at, self.bytes_out,
                 self.bytes_in, reason)
