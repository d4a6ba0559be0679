"""The browser's frames as web/frames.py reads them, against a real Tornado server.

A raw client writes exactly the bytes of each case (frames cut anywhere, several in one
write, fragments with a ping between them, the malformed ones RFC 6455 says to refuse) and
reads what the server sends back; the server's handler echoes each message and notes the
order it handled them in.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct

import pytest
import tornado.httpserver
import tornado.web
import tornado.websocket

from guacbridge.web.frames import READ_SIZE, BatchedFrames

MAX = 200_000


class Echo(tornado.websocket.WebSocketHandler):
    """Echoes each message; ``slow:`` ones hold the next message back until they are done."""

    max_message_size = MAX
    batched = True                      # False: Tornado's own frame loop, for comparison
    seen: list[str] = []
    closed: list[tuple[int | None, str | None]] = []

    def get_compression_options(self) -> None:
        return None

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        assert protocol is not None
        return BatchedFrames(self, False, protocol.params) if self.batched else protocol

    async def on_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else "bin:" + message.decode()
        self.seen.append(text)
        if text.startswith("slow:"):
            await asyncio.sleep(0.2)
            self.seen.append("done:" + text)
        await self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        self.closed.append((self.close_code, self.close_reason))


def frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bytes | None = None,
          rsv: int = 0) -> bytes:
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0xFE]) + struct.pack("!H", n)
    else:
        head += bytes([0xFF]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Raw:
    """A bare WebSocket client: writes given bytes, reads the server's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes, step: int | None = None) -> None:
        for i in range(0, len(data), step or len(data) or 1):
            self.writer.write(data[i:i + (step or len(data))])
            await self.writer.drain()
            if step:
                await asyncio.sleep(0.001)

    async def receive(self) -> tuple[int, bytes] | None:
        """(opcode, payload) of the next frame, None when the server has hung up."""
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 5)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return b0 & 0x0F, await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None


@pytest.fixture(autouse=True, params=["batched", "tornado"])
def loop_kind(request):
    """Each case against web/frames.py and against Tornado's own loop: the same answers."""
    Echo.batched = request.param == "batched"
    yield request.param
    Echo.batched = True


@contextlib.asynccontextmanager
async def server():
    Echo.seen, Echo.closed = [], []
    http = tornado.httpserver.HTTPServer(tornado.web.Application([("/ws", Echo)]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    http.add_socket(sock)
    try:
        yield sock.getsockname()[1]
    finally:
        http.stop()


def run(case):
    async def scenario():
        async with server() as port:
            return await case(await Raw.connect(port))
    return asyncio.run(scenario())


def test_many_frames_in_one_write_are_each_handled_in_order():
    async def case(ws: Raw):
        await ws.send(b"".join(frame(f"m{i}".encode()) for i in range(50)))
        return [await ws.receive() for _ in range(50)]
    assert run(case) == [(1, f"m{i}".encode()) for i in range(50)]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 3 * READ_SIZE])
def test_frames_cut_anywhere_arrive_whole_with_each_length_encoding(size):
    body = bytes(ord("a") + i % 26 for i in range(size))

    async def case(ws: Raw):
        data = frame(body) + frame(b"after")
        await ws.send(data, step=1 if size < 200 else 7919)   # cut inside headers and masks
        return await ws.receive(), await ws.receive()
    assert run(case) == ((1, body), (1, b"after"))


def test_a_fragmented_message_is_joined_with_a_ping_between_its_fragments_answered():
    async def case(ws: Raw):
        await ws.send(frame(b"hel", fin=False) + frame(b"ping!", opcode=9)
                      + frame(b"lo ", opcode=0, fin=False) + frame(b"world", opcode=0))
        return await ws.receive(), await ws.receive()
    assert run(case) == ((0xA, b"ping!"), (1, b"hello world"))


def test_binary_messages_and_unmasked_frames_are_taken_as_tornado_takes_them():
    async def case(ws: Raw):
        unmasked = bytes([0x81, 2]) + b"hi"
        await ws.send(frame(b"data", opcode=2) + unmasked)
        return await ws.receive(), await ws.receive()
    assert run(case) == ((2, b"data"), (1, b"hi"))


def test_a_message_waits_for_the_one_before_it_to_be_handled():
    async def case(ws: Raw):
        await ws.send(frame(b"slow:1") + frame(b"fast:2"))
        await ws.receive(), await ws.receive()
        return list(Echo.seen)
    assert run(case) == ["slow:1", "done:slow:1", "fast:2"]


def test_a_close_frame_is_answered_with_its_code_and_the_handler_sees_it():
    async def case(ws: Raw):
        await ws.send(frame(struct.pack("!H", 4001) + b"bye", opcode=8) + frame(b"ignored"))
        answer = await ws.receive()
        rest = await ws.receive()
        await asyncio.sleep(0.1)
        return answer, rest, list(Echo.seen), list(Echo.closed)
    answer, rest, seen, closed = run(case)
    assert answer == (8, struct.pack("!H", 4001))
    assert rest is None and seen == [] and closed == [(4001, "bye")]


def test_a_message_over_max_message_size_is_closed_with_1009_before_it_is_all_sent():
    async def case(ws: Raw):
        whole = frame(b"x" * (MAX + 1))
        await ws.send(whole[:1000])          # the header says enough
        return await ws.receive(), list(Echo.seen)
    assert run(case) == ((8, struct.pack("!H", 1009) + b"message too big"), [])


def test_fragments_adding_up_past_max_message_size_are_closed_with_1009():
    async def case(ws: Raw):
        await ws.send(frame(b"y" * (MAX // 2 + 10), fin=False))
        await asyncio.sleep(0.1)
        await ws.send(frame(b"y" * (MAX // 2 + 10), opcode=0)[:100])
        return await ws.receive(), list(Echo.seen)
    assert run(case) == ((8, struct.pack("!H", 1009) + b"message too big"), [])


@pytest.mark.parametrize("bad", [
    frame(b"x", rsv=0x40),                                   # a reserved bit
    frame(b"x" * 126, opcode=9),                             # a control frame over 125
    frame(b"x", opcode=9, fin=False),                        # a fragmented control frame
    frame(b"x", opcode=0),                                   # a continuation of nothing
    frame(b"a", fin=False) + frame(b"b"),                    # a message inside a message
    frame(b"\xff\xfe"),                                      # text that is not UTF-8
    frame(b"x", opcode=3),                                   # an unknown opcode
], ids=["rsv", "long-control", "fragmented-control", "stray-continuation", "interleaved",
        "bad-utf8", "opcode-3"])
def test_malformed_frames_end_the_connection_without_a_message(bad):
    async def case(ws: Raw):
        await ws.send(frame(b"good") + bad + frame(b"never"))
        first = await ws.receive()
        end = await ws.receive()
        await asyncio.sleep(0.1)
        return first, end, list(Echo.seen), len(Echo.closed)
    first, end, seen, closed = run(case)
    assert first == (1, b"good")
    assert end is None and seen == ["good"] and closed == 1
