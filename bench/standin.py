"""A guacd stand-in on loopback that replays a recording of real guacd, for relay benchmarks.

It does guacd's side of the handshake (``select`` → ``args`` → ``connect`` → ``ready``), then
plays the mode named by the ``hostname`` connection parameter (by ``password`` when it is set:
guacbridge's target policy wants a real address as the hostname), so every relay drives it the
same way:

- ``sat-BYTES``: the recording, looped, as fast as the relay reads it, then closes;
- ``paced-BYTES_PER_S-SECONDS``: the same at a fixed rate, in 10 ms steps;
- ``idle``: the recording's first instruction, then a ``nop`` every 5 s until the peer leaves.

It writes whole instructions only, and answers the tunnel's ``ping`` (``0.,4.ping,…;``)
between them — real guacd 1.3.0 does not, so relays that forward pings (guacamole-lite, the
bare relay) get a round trip through the stand-in instead of an answer of their own.

Run: python bench/standin.py PORT [RECORDING]; it prints "ready" when it listens.
"""
from __future__ import annotations

import asyncio
import bisect
import gzip
import pathlib
import socket
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guacbridge import protocol  # noqa: E402

RECORDING = ROOT / "bench" / "recording.guac.gz"
CHUNK = 65536


class Recording:
    """The recorded stream and where its instructions end, to cut it at boundaries."""

    def __init__(self, path: pathlib.Path) -> None:
        text = gzip.decompress(path.read_bytes())
        self.data = memoryview(text)
        self.ends = [i + 1 for i in range(len(text)) if text[i] == 59]   # ';'
        self.first = bytes(text[:self.ends[0]])

    def cut(self, start: int, size: int) -> int:
        """The first instruction end at or after start + size (or the recording's end)."""
        i = bisect.bisect_left(self.ends, min(start + size, self.ends[-1]))
        return self.ends[i]


async def serve(rec: Recording, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    parser = protocol.Parser()
    mode = None
    while mode is None:
        data = await reader.read(CHUNK)
        if not data:
            return writer.close()
        for elements in parser.feed(data):
            if elements[0] == "select":
                writer.write(protocol.encode("args", "VERSION_1_3_0", "hostname", "port",
                                             "password").encode())
            elif elements[0] == "connect":
                values = elements[1:]
                if values and values[0].startswith("VERSION_"):
                    values = values[1:]
                # The mode: the password's value where a relay must give a real address
                # (guacbridge judges hostnames by its target policy), else the hostname's.
                mode = (values[2] if len(values) > 2 and values[2] else
                        values[0] if values else "idle")
    writer.write(protocol.encode("ready", "$standin").encode())
    echo = asyncio.ensure_future(_answer_pings(parser, reader, writer))
    try:
        kind, *numbers = mode.split("-")
        if kind == "sat":
            await _replay(rec, writer, int(numbers[0]), None, 0)
        elif kind == "paced":
            await _replay(rec, writer, int(numbers[0]) * int(numbers[1]), int(numbers[0]), 0)
        else:
            writer.write(rec.first)
            while not echo.done():
                await asyncio.wait([echo], timeout=5)
                writer.write(b"3.nop;")
        # Close gracefully: unread pings in our socket would make the kernel reset the
        # connection, and the relay would lose the end of the stream.
        writer.write_eof()
        writer.eof_written = True       # pings arriving from now on go unanswered
        await asyncio.wait_for(echo, 30)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        pass
    finally:
        echo.cancel()
        writer.close()


async def _replay(rec: Recording, writer: asyncio.StreamWriter, total: int,
                  rate: int | None, pos: int) -> None:
    loop = asyncio.get_running_loop()
    size = rate // 100 if rate else CHUNK
    sent, started = 0, loop.time()
    length = len(rec.data)
    while sent < total:
        end = rec.cut(pos, min(size, total - sent))
        writer.write(rec.data[pos:end])
        sent += end - pos
        pos = end if end < length else 0
        await writer.drain()
        if rate:
            delay = started + sent / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)


async def _answer_pings(parser: protocol.Parser, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        for elements in parser.feed(data):
            if elements[:2] == ["", "ping"] and not writer.transport.is_closing() \
                    and not getattr(writer, "eof_written", False):
                writer.write(protocol.encode(*elements).encode())


async def main() -> None:
    port = int(sys.argv[1])
    rec = Recording(pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else RECORDING)
    server = await asyncio.start_server(lambda r, w: serve(rec, r, w), "127.0.0.1", port,
                                        limit=CHUNK, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
