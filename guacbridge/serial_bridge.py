"""The serial bridge: a serial line (serial.py) shown to guacd as an ordinary telnet server.

guacd has no serial protocol, so for each new guacd connection of a serial console
:meth:`Bridges.open` opens the console's line (its opener raises SerialError when it cannot)
and a telnet listener for that one connection: bound on ``serial.listen_address`` (an
address guacd reaches) at a free port, it takes the first connection within
``serial.accept_timeout`` seconds that gives its one-time secret, and closes; nothing else
can connect to it afterwards. guacd is handed ``telnet`` to that listener, with the console's
terminal parameters and the secret as its ``password``.

The secret is why any local process cannot take a BMC's console by connecting first: each
connection is greeted with ``Password:`` (what guacd's default ``password-regex`` answers), and
only one that sends the secret, within :data:`LOGIN_TIMEOUT` seconds, gets the line (the
prompt is then wiped from the terminal). Any other connection is closed without a byte of the
line read or written, logged as refused, and the listener keeps waiting for guacd.

Between the two, this module speaks just enough telnet for guacd's client (libtelnet):
bytes 255 (IAC) doubled on the way out and undoubled on the way in, option requests answered
(guacbridge echoes and suppresses go-ahead, it wants none of the client's options), and
subnegotiations dropped. When guacd goes the line is closed; when the line ends its
``reason`` is written to the terminal and the connection closes, so the page shows why.

What the line sent is also kept per console in a bounded ring (``serial.output_bytes``),
for ``GET /api/v1/consoles/{id}/output``; it lives while the console lives and is freed
when the console closes (:meth:`Bridges.on_event`). The ring is this instance's: a console
bridged by another instance has its output there.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from . import parameters, serial
from .config import Settings
from .grants import Target
from .serial import SerialLine

log = logging.getLogger(__name__)

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA = 1, 3
OURS = frozenset({ECHO, SGA})        # options guacbridge's end does (WILL)
GREETING = bytes((IAC, WILL, ECHO, IAC, WILL, SGA))
# guacd's terminal parameters, kept in the telnet target; the rest is the line's business.
# The login guacd's telnet client does for the listener: it types ``password`` and a CR when
# the server's output matches ``password-regex`` (default "[Pp]assword:").
PROMPT = b"Password: "
WIPE = b"\r\x1b[K"                   # the prompt's line, cleared before the line's output
LOGIN_TIMEOUT = 5.0                  # seconds a connection has to send the secret
SECRET_MAX = 256                     # bytes: a longer first line is no secret of ours
TERMINAL = frozenset({"color-scheme", "font-name", "font-size", "scrollback", "backspace",
                      "terminal-type", "read-only", "disable-copy", "disable-paste"})


def escape(data: bytes) -> bytes:
    """*data* as telnet sends it: every 255 doubled."""
    return data.replace(b"\xff", b"\xff\xff")


class Unframer:
    """Telnet from guacd into plain bytes for the line, and the answers to its option
    requests; keeps state across reads (a command may be split between two)."""

    def __init__(self) -> None:
        self._state = "data"
        self._verb = 0
        self._answered: set[tuple[int, int]] = set()

    def feed(self, chunk: bytes) -> tuple[bytes, bytes]:
        """(bytes for the line, bytes to answer guacd with)."""
        data = bytearray()
        answer = bytearray()
        for b in chunk:
            state = self._state
            if state == "data":
                if b == IAC:
                    self._state = "iac"
                elif b == 0 and data[-1:] == b"\r":
                    pass              # CR NUL is a bare CR
                else:
                    data.append(b)
            elif state == "iac":
                if b == IAC:
                    data.append(IAC)
                    self._state = "data"
                elif b in (DO, DONT, WILL, WONT):
                    self._verb = b
                    self._state = "option"
                elif b == SB:
                    self._state = "sb"
                else:                 # NOP, GA, AYT, …: nothing for the line
                    self._state = "data"
            elif state == "option":
                answer += self._answer(self._verb, b)
                self._state = "data"
            elif state == "sb":
                if b == IAC:
                    self._state = "sb-iac"
            elif state == "sb-iac":
                self._state = "data" if b == SE else "sb"
        return bytes(data), bytes(answer)

    def _answer(self, verb: int, option: int) -> bytes:
        if verb == DO:
            reply = WILL if option in OURS else WONT
        elif verb == WILL:
            reply = DONT
        else:                         # DONT / WONT: agreed, nothing to say
            return b""
        if option in OURS and reply == WILL:     # said in the greeting already
            return b""
        if (reply, option) in self._answered:    # each once: no negotiation loops
            return b""
        self._answered.add((reply, option))
        return bytes((IAC, reply, option))


class Ring:
    """The last *size* bytes a console's line sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data = bytearray()

    def append(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self.size:
            del self._data[:len(self._data) - self.size]

    def text(self, lines: int | None = None) -> str:
        """What is kept, as text (bytes that are no UTF-8 become U+FFFD); the last *lines*
        lines only when given."""
        text = bytes(self._data).decode("utf-8", "replace")
        if lines is None:
            return text
        if lines <= 0:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])


class Bridges:
    """This instance's bridges: one per guacd connection of a serial console, and one
    output ring per console."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rings: dict[str, Ring] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, console_id: str, target: Target) -> Target:
        """Open *target*'s line (SerialError when it cannot) and a listener for one guacd
        connection; the telnet target guacd is to connect to, with the listener's secret."""
        line = await serial.open_line(target.params, self.settings)
        secret = secrets.token_urlsafe(24)
        admitted: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()
        try:     # start_server calls back per connection: the first with the secret is taken
            server = await asyncio.start_server(
                lambda r, w: _login(console_id, secret, admitted, r, w),
                self.settings.serial_listen_address, 0)
        except BaseException as e:
            await line.close()
            if isinstance(e, OSError):
                raise serial.SerialError(503, "the serial bridge cannot listen on"
                                              f" serial.listen_address: {e.strerror}") from None
            raise
        host, port = server.sockets[0].getsockname()[:2]
        ring = self.rings.setdefault(console_id, Ring(self.settings.serial_output_bytes))
        task = asyncio.create_task(self._serve(console_id, server, admitted, line, ring))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Target("telnet", {**telnet_params(target.params), "hostname": host,
                                 "port": str(port), "password": secret,
                                 "password-regex": "[Pp]assword:"})

    async def _serve(self, console_id: str, server: asyncio.Server,
                     admitted: asyncio.Future[Admitted], line: SerialLine,
                     ring: Ring) -> None:
        try:
            try:
                guacd = await asyncio.wait_for(asyncio.shield(admitted),
                                               self.settings.serial_accept_timeout)
            except TimeoutError:
                admitted.cancel()         # a login still under way is refused
                log.warning("console %s: guacd did not connect to the serial bridge within"
                            " %d s; the line is closed", console_id,
                            self.settings.serial_accept_timeout)
                return
            finally:
                server.close()
            await relay(line, guacd.reader, guacd.writer, ring, guacd.unframer, guacd.rest)
            log.info("console %s: serial line ended: %s", console_id,
                     line.reason or "guacd disconnected")
        finally:
            await line.close()

    def output(self, console_id: str) -> Ring | None:
        return self.rings.get(console_id)

    def on_event(self, event: str, body: dict[str, Any]) -> None:
        """A ConsoleEvents listener: a closed console's output is freed."""
        if event == "closed":
            self.rings.pop(body["id"], None)


class Admitted:
    """The connection that gave the listener's secret: its streams, its telnet state, and
    what it sent after the secret's line (for the serial line)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 unframer: Unframer, rest: bytes) -> None:
        self.reader, self.writer, self.unframer, self.rest = reader, writer, unframer, rest


async def _login(console_id: str, secret: str, admitted: asyncio.Future[Admitted],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection to a listener: admitted when its first line is *secret*, else closed
    (the line untouched) and logged as refused, never with what it sent."""
    if admitted.done():               # one connection only
        writer.close()
        return
    unframer = Unframer()
    given: bytes | None = None
    rest = b""
    with contextlib.suppress(OSError, TimeoutError):
        writer.write(GREETING + PROMPT)
        given, rest = await asyncio.wait_for(_first_line(reader, writer, unframer),
                                             LOGIN_TIMEOUT)
    if given is None or not secrets.compare_digest(given, secret.encode()):
        refused = "no or a wrong secret"
    elif admitted.done():
        refused = "the line is no longer waiting"
    else:
        writer.write(WIPE)
        admitted.set_result(Admitted(reader, writer, unframer, rest))
        return
    peer = writer.get_extra_info("peername")
    log.warning("console %s: refused a connection to the serial bridge from %s: %s",
                console_id, peer[0] if peer else "?", refused)
    writer.close()


async def _first_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      unframer: Unframer) -> tuple[bytes | None, bytes]:
    """(the first line guacd sent, what came after it); None when it hung up or sent more
    than :data:`SECRET_MAX` bytes without a line's end."""
    got = bytearray()
    while True:
        chunk = await reader.read(1024)
        if not chunk:
            return None, b""
        data, answer = unframer.feed(chunk)
        if answer:
            writer.write(answer)
        got += data
        ends = [i for i in (got.find(b"\r"), got.find(b"\n")) if i >= 0]
        if ends:
            end = min(ends)
            rest = bytes(got[end + 1:])
            if got[end:end + 1] == b"\r" and rest[:1] == b"\n":
                rest = rest[1:]
            return bytes(got[:end]), rest
        if len(got) > SECRET_MAX:
            return None, b""


def telnet_params(params: Mapping[str, str]) -> dict[str, str]:
    """The guacd parameters of a serial target that its telnet target keeps: the
    terminal's and guacbridge's own (recording, the prompt mark), never the line's (its
    far end, its credentials)."""
    line_params = parameters.ALLOWED[serial.PROTOCOL] - TERMINAL
    return {k: v for k, v in params.items() if k not in line_params}


async def relay(line: SerialLine, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter, ring: Ring, unframer: Unframer,
                rest: bytes = b"") -> None:
    """Bytes both ways between *line* and guacd's telnet connection (greeted and logged in
    already, *rest* what it sent after its secret) until either ends; the line's reason
    goes to the terminal when the line ended first."""
    if rest:
        await line.write(rest)

    async def from_guacd() -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            data, answer = unframer.feed(chunk)
            if answer:
                writer.write(answer)
            if data:
                await line.write(data)

    async def from_line() -> None:
        while True:
            data = await line.read()
            if not data:
                reason = line.reason or "the serial line ended"
                writer.write(f"\r\n[guacbridge: {reason}]\r\n".encode())
                await writer.drain()
                return
            ring.append(data)
            writer.write(escape(data))
            await writer.drain()

    tasks = [asyncio.create_task(from_guacd()), asyncio.create_task(from_line())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
