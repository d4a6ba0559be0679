"""An asyncio client for guacd: the handshake, and a connection ready to relay.

Owns the client side of guacd's handshake (select, args with version negotiation, the
client's capabilities, connect, ready) and nothing of browsers or tokens. After
:func:`connect` the caller owns the stream: ``pending`` holds instructions that arrived
with ``ready`` and must be forwarded first, and ``framer`` keeps any partial one.
"""
from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Mapping, Sequence

from . import protocol
from .protocol import Framer, encode

# The newest protocol version we speak; guacd 1.5 and 1.6 announce this one too.
LATEST = (1, 5, 0)
READ_SIZE = 65536

# Guacamole status codes (guacamole-facts.md, section 3).
SUCCESS = 0x0000
SERVER_ERROR = 0x0200
UPSTREAM_TIMEOUT = 0x0202
UPSTREAM_ERROR = 0x0203
UPSTREAM_NOT_FOUND = 0x0207
UPSTREAM_UNAVAILABLE = 0x0208
SESSION_CLOSED = 0x020B
CLIENT_BAD_REQUEST = 0x0300
CLIENT_UNAUTHORIZED = 0x0301
CLIENT_OVERRUN = 0x030D
CLIENT_BAD_TYPE = 0x030F


class GuacdError(Exception):
    """guacd refused or failed; ``status`` is the Guacamole status code for the browser."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (status 0x{status:04X})")
        self.status = status
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
    version: tuple[int, int, int]
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


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``VERSION_1_3_0`` → (1, 3, 0); None for anything else (guacd older than 1.1)."""
    parts = text.split("_")
    if len(parts) != 4 or parts[0] != "VERSION":
        return None
    try:
        major, minor, patch = (int(p) for p in parts[1:])
    except ValueError:
        return None
    return major, minor, patch


async def connect(address: tuple[str, int], protocol_name: str, params: Mapping[str, str],
                  caps: Capabilities, timeout: float = 15.0) -> GuacdConnection:
    """Open a connection through guacd and complete its handshake; raise GuacdError."""
    started = time.monotonic()
    host, port = address
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=READ_SIZE), timeout)
    except asyncio.TimeoutError:
        raise GuacdUnavailable(UPSTREAM_TIMEOUT,
                               "guacd did not accept the connection in time") from None
    except OSError as e:
        raise GuacdUnavailable(
            UPSTREAM_UNAVAILABLE,
            f"guacd is not reachable at {host}:{port} ({e.strerror or e})") from None
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return await asyncio.wait_for(
            _handshake(reader, writer, protocol_name, params, caps, started, address), timeout)
    except asyncio.TimeoutError:
        writer.close()
        raise GuacdUnavailable(UPSTREAM_TIMEOUT,
                               "guacd did not complete the handshake in time") from None
    except (GuacdError, OSError, EOFError, protocol.ProtocolError) as e:
        writer.close()
        if isinstance(e, GuacdError):
            raise
        raise GuacdError(UPSTREAM_ERROR, f"guacd handshake failed: {e}") from None


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     protocol_name: str, params: Mapping[str, str], caps: Capabilities,
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
                        else SERVER_ERROR
                    raise GuacdError(status, message)
            data = await reader.read(READ_SIZE)
            if not data:
                error = GuacdUnavailable if opcode == "args" else GuacdError
                raise error(UPSTREAM_ERROR,
                            f"guacd closed the connection while waiting for {opcode!r}")
            queue.extend(protocol.split(framer.feed(data)))

    writer.write(encode("select", protocol_name).encode())
    args = (await expect("args"))[1:]
    offered = parse_version(args[0]) if args else None
    if offered is None:
        version, names = (1, 0, 0), args
    else:
        version, names = min(offered, LATEST), args[1:]
    out = [encode("size", caps.width, caps.height, caps.dpi),
           encode("audio", *caps.audio), encode("video", *caps.video),
           encode("image", *caps.image)]
    if version >= (1, 1, 0) and caps.timezone:
        out.append(encode("timezone", caps.timezone))
    if version >= (1, 5, 0) and caps.name:
        out.append(encode("name", caps.name))
    values = [params.get(name, "") for name in names]
    if offered is not None:
        values.insert(0, "VERSION_%d_%d_%d" % version)
    out.append(encode("connect", *values))
    writer.write("".join(out).encode())
    await writer.drain()
    ready = await expect("ready")
    return GuacdConnection(reader=reader, writer=writer, framer=framer,
                           connection_id=ready[1] if len(ready) > 1 else "",
                           version=version, pending="".join(queue), address=address,
                           handshake_seconds=time.monotonic() - started)

