"""The one WebSocket client every relay is measured with: lean, so the relay is what's slow.

An asyncio protocol that speaks just enough RFC 6455 for a Guacamole tunnel: it counts the
bytes of the messages it gets without building them, notes when the stream's first
instruction (``marker``) arrives, sends guacamole-common-js's ``ping`` and times the echo,
and can stop reading (a stalled browser) so that the relay's buffering shows. Its frames
carry an all-zero mask, which RFC 6455 allows and which saves masking in Python.
"""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

_PING = b"4.ping,13."
_KEEP = len(_PING) + 14      # what a ping echo split across frames can need of the last one


class WsClient(asyncio.Protocol):
    def __init__(self, marker: bytes = b"") -> None:
        loop = asyncio.get_running_loop()
        self.upgraded = loop.create_future()
        self.closed = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.marker = marker
        self.started = 0.0               # when connect() began
        self.first_data_at: float | None = None
        self.bytes = self.messages = 0
        self.sent: dict[bytes, float] = {}
        self.rtts: list[float] = []
        self._carry = b""
        self._seq = 0

    # -- connection ------------------------------------------------------------------------
    @classmethod
    async def connect(cls, host: str, port: int, path: str, marker: bytes = b"") -> "WsClient":
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: cls(marker), host, port)
        client.started = started
        key = base64.b64encode(os.urandom(16)).decode()
        client.transport.write(
            (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: guacamole\r\n\r\n").encode())
        await client.upgraded
        return client

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(time.perf_counter())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
            self.transport.close()

    # -- sending ---------------------------------------------------------------------------
    def send_text(self, text: bytes) -> None:
        n = len(text)
        header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else \
            struct.pack("!BBH", 0x81, 0xFE, n) if n < 65536 else \
            struct.pack("!BBQ", 0x81, 0xFF, n)
        self.transport.write(header + b"\x00\x00\x00\x00" + text)

    def ping(self) -> None:
        """guacamole-common-js's keep-alive: ``0.,4.ping,13.<timestamp>;``."""
        self._seq += 1
        stamp = b"%13d" % (1_000_000_000_000 + self._seq)
        self.sent[stamp] = time.perf_counter()
        self.send_text(b"0.," + _PING + stamp + b";")

    # -- receiving -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:buf.find(b"\r\n")])
            del buf[:end + 4]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.upgraded.set_result(None)
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1] & 0x7F
            start = pos + 2
            if b1 == 126:
                if end - pos < 4:
                    break
                b1 = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif b1 == 127:
                if end - pos < 10:
                    break
                b1 = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 10
            stop = start + b1
            if stop > end:
                break
            opcode = b0 & 0x0F
            if opcode <= 2:
                self.bytes += b1
                self.messages += b0 >> 7
                self._scan(buf, start, stop)
            elif opcode == 8:
                self.close()
            elif opcode == 9:                           # answer WebSocket pings
                self.transport.write(b"\x8a\x80\x00\x00\x00\x00")
            pos = stop
        if pos:
            del buf[:pos]

    def _scan(self, buf: bytearray, start: int, stop: int) -> None:
        now = None
        if self.first_data_at is None and self.marker:
            if buf.find(self.marker, start, stop) >= 0 or \
                    self.marker in self._carry + bytes(buf[start:start + len(self.marker)]):
                self.first_data_at = now = time.perf_counter()
        if self.sent:
            hits = []
            head = self._carry + bytes(buf[start:start + _KEEP])
            i = head.find(_PING)
            while 0 <= i < len(self._carry):
                hits.append(head[i + len(_PING):i + _KEEP - 1])
                i = head.find(_PING, i + 1)
            i = buf.find(_PING, start, stop)
            while i >= 0:
                hits.append(bytes(buf[i + len(_PING):i + _KEEP - 1]))
                i = buf.find(_PING, i + 1, stop)
            for stamp in hits:
                sent = self.sent.pop(stamp, None)
                if sent is not None:
                    self.rtts.append((now or time.perf_counter()) - sent)
            self._carry = bytes(buf[max(start, stop - _KEEP):stop])

    def stall(self) -> None:
        self.transport.pause_reading()

    def resume(self) -> None:
        self.transport.resume_reading()
