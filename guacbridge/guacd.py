"""An asyncio client for guacd: the handshake, and a connection ready to relay.

Owns the client side of guacd's handshake (select, args with version negotiation, the
client's capabilities, connect, ready) and nothing of browsers or tokens. After
:func:`connect` the caller owns the stream: ``pending`` holds instructions that arrived
with ``ready`` and must be forwarded first, and ``framer`` keeps any partial one.
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import socket
import time
from collections.abc import Mapping, Sequence

from . import protocol
from .protocol import Framer, encode
from .status import Status

READ_SIZE = 65536


class Protocol(enum.Enum):
    """A version of the Guacamole protocol, as guacd's ``args`` offers it and ``connect``
    answers it; what each one lets a client send or expect is a property, not a comparison.

    guacd 1.5.x and 1.6.x still offer VERSION_1_5_0: it is the newest there is, and the
    newest this client speaks."""

    VERSION_1_0_0 = (1, 0, 0)
    VERSION_1_1_0 = (1, 1, 0)
    VERSION_1_3_0 = (1, 3, 0)
    VERSION_1_5_0 = (1, 5, 0)

    @classmethod
    def parse(cls, text: str) -> Protocol:
        """``VERSION_1_3_0`` → VERSION_1_3_0. A version this table does not name counts as
        the newest one it names below it (guacd would answer that one), so a newer guacd's
        ``VERSION_1_6_0`` is VERSION_1_5_0; ValueError for anything else."""
        parts = text.split("_")
        if len(parts) != 4 or parts[0] != "VERSION" or not all(
                p.isascii() and p.isdigit() for p in parts[1:]):
            raise ValueError(f"not a Guacamole protocol version: {text[:40]!r}")
        numbers = tuple(int(p) for p in parts[1:])
        known = [version for version in cls if version.value <= numbers]
        if not known:
            raise ValueError(f"older than any Guacamole protocol version: {text[:40]!r}")
        return known[-1]

    @classmethod
    def offered(cls, args: Sequence[str]) -> tuple[Protocol, list[str]]:
        """guacd's ``args`` → (the version to speak, the parameter names). guacd before 1.1
        sends only names, in a fixed order, and that is VERSION_1_0_0."""
        if args:
            try:
                return cls.parse(args[0]), list(args[1:])
            except ValueError:
                pass
        return cls.VERSION_1_0_0, list(args)

    def _since(self, first: Protocol) -> bool:
        return self.value >= first.value

    @property
    def number(self) -> str:
        """``1.3.0``, for logs."""
        return ".".join(str(n) for n in self.value)

    @property
    def negotiated(self) -> bool:
        """``args`` and ``connect`` carry the version (1.1.0+), and handshake order is free."""
        return self._since(Protocol.VERSION_1_1_0)

    @property
    def supports_timezone(self) -> bool:
        """The ``timezone`` handshake instruction (1.1.0+)."""
        return self._since(Protocol.VERSION_1_1_0)

    @property
    def supports_required(self) -> bool:
        """guacd may ask the owner for missing parameters with ``required``, answered on
        ``argv`` streams (1.3.0+); guacd waits for the answer without a timeout."""
        return self._since(Protocol.VERSION_1_3_0)

    @property
    def supports_msg(self) -> bool:
        """guacd tells the owner of users joining and leaving with ``msg`` (1.5.0+)."""
        return self._since(Protocol.VERSION_1_5_0)

    @property
    def supports_name(self) -> bool:
        """The ``name`` handshake instruction: the joining user's name (1.5.0+)."""
        return self._since(Protocol.VERSION_1_5_0)


class GuacdError(Exception):
    """guacd refused or failed; ``status`` is the Guacamole status for the browser (guacd's
    own code, read with :meth:`Status.of`, stays in the text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (status 0x{status:04X})")
        self.status = Status.of(status)
        self.message = message


class GuacdUnavailable(GuacdError):
    """This guacd did not serve us at all (refused, silent, gone before ``args``): another
    guacd may. Errors guacd reports about the target are plain :class:`GuacdError`."""


@dataclasses.dataclass
class Capabilities:
    """What the browser told us about itself, sent to guacd during the handshake."""
    width: int = 1024
    height: int = 768
    dpi: int = 96
    audio: Sequence[str] = ()
    video: Sequence[str] = ()
    image: Sequence[str] = ("image/png", "image/jpeg", "image/webp")
    timezone: str | None = None
    name: str | None = None


@dataclasses.dataclass
class GuacdConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    framer: Framer
    connection_id: str
    version: Protocol
    pending: str              # complete instructions received along with ``ready``
    address: tuple[str, int]
    handshake_seconds: float

    async def instructions(self) -> list[list[str]]:
        """The next batch of instructions, parsed: for ops tools and tests, not the relay."""
        if self.pending:
            text, self.pending = self.pending, ""
        else:
            data = await self.reader.read(READ_SIZE)
            if not data:
                raise EOFError("guacd closed the connection")
            text = self.framer.feed(data)
        return [protocol.parse(raw) for raw in protocol.split(text)]

    def close(self) -> None:
        self.writer.close()


async def connect(address: tuple[str, int], select: str, params: Mapping[str, str],
                  caps: Capabilities, timeout: float = 15.0) -> GuacdConnection:
    """Open a connection through guacd and complete its handshake; raise GuacdError.
    *select* is what guacd is asked for: a protocol (``vnc``, ``rdp``…) for a new
    connection, or an existing connection's id (``$…``) to join it."""
    started = time.monotonic()
    host, port = address
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=READ_SIZE), timeout)
    except TimeoutError:
        raise GuacdUnavailable(Status.UPSTREAM_TIMEOUT,
                               "guacd did not accept the connection in time") from None
    except OSError as e:
        raise GuacdUnavailable(
            Status.UPSTREAM_UNAVAILABLE,
            f"guacd is not reachable at {host}:{port} ({e.strerror or e})") from None
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return await asyncio.wait_for(
            _handshake(reader, writer, select, params, caps, started, address), timeout)
    except TimeoutError:
        writer.close()
        raise GuacdUnavailable(Status.UPSTREAM_TIMEOUT,
                               "guacd did not complete the handshake in time") from None
    except (GuacdError, OSError, EOFError, protocol.ProtocolError) as e:
        writer.close()
        if isinstance(e, GuacdError):
            raise
        raise GuacdError(Status.UPSTREAM_ERROR, f"guacd handshake failed: {e}") from None


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     select: str, params: Mapping[str, str], caps: Capabilities,
                     started: float, address: tuple[str, int]) -> GuacdConnection:
    framer = Framer()
    queue: list[str] = []

    async def expect(opcode: str) -> list[str]:
        while True:
            while queue:
                elements = protocol.parse(queue.pop(0))
                if elements[0] == opcode:
                    return elements
                if elements[0] == "error":
                    message = elements[1] if len(elements) > 1 else "guacd error"
                    status = int(elements[2]) if len(elements) > 2 and elements[2].isdigit() \
                        else Status.SERVER_ERROR
                    raise GuacdError(status, message)
            data = await reader.read(READ_SIZE)
            if not data:
                error = GuacdUnavailable if opcode == "args" else GuacdError
                raise error(Status.UPSTREAM_ERROR,
                            f"guacd closed the connection while waiting for {opcode!r}")
            queue.extend(protocol.split(framer.feed(data)))

    writer.write(encode("select", select).encode())
    args = (await expect("args"))[1:]
    version, names = Protocol.offered(args)
    out = [encode("size", caps.width, caps.height, caps.dpi),
           encode("audio", *caps.audio), encode("video", *caps.video),
           encode("image", *caps.image)]
    if version.supports_timezone and caps.timezone:
        out.append(encode("timezone", caps.timezone))
    if version.supports_name and caps.name:
        out.append(encode("name", caps.name))
    values = [params.get(name, "") for name in names]
    if version.negotiated:
        values.insert(0, version.name)
    out.append(encode("connect", *values))
    writer.write("".join(out).encode())
    await writer.drain()
    ready = await expect("ready")
    return GuacdConnection(reader=reader, writer=writer, framer=framer,
                           connection_id=ready[1] if len(ready) > 1 else "",
                           version=version, pending="".join(queue), address=address,
                           handshake_seconds=time.monotonic() - started)

