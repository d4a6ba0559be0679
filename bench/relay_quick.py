"""A quick look at the direct path's speed; prints one JSON object.

- first_frame: WebSocket open → first ``sync`` through real guacd 1.3.0 and Xvnc (the demo
  parts), over ``rounds`` fresh consoles.
- relay: instructions/s and MB/s that ``guacbridge serve`` (its own process, so one core)
  forwards from a guacd stand-in that streams a guacd-like mix (mostly ~2.2 KB ``blob``
  instructions, some ``img``/``end``/``sync``) as fast as it is read; plus the relay's CPU
  seconds per 100 MB.
- codec: Framer.feed alone on the same stream in 64 KiB chunks.

Run: .venv/bin/python bench/relay_quick.py [--mb 200] [--rounds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tornado.websocket  # noqa: E402

from guacbridge import demo, protocol  # noqa: E402
from service_fixtures import start_service  # noqa: E402


def guacd_like_stream(megabytes: float) -> bytes:
    """A deterministic stream shaped like guacd's output for a busy xterm."""
    rng = random.Random(7)
    parts: list[str] = []
    size = n = 0
    while size < megabytes * 2**20:
        stream = str(n % 8)
        batch = [protocol.encode("img", stream, 14, 0, "image/png", rng.randrange(1024),
                                 rng.randrange(768))]
        batch += [protocol.encode("blob", stream, base64.b64encode(rng.randbytes(1650)).decode())
                  for _ in range(rng.randrange(1, 6))]
        batch.append(protocol.encode("end", stream))
        if n % 4 == 0:
            batch.append(protocol.encode("sync", 1700000000000 + n))
        parts += batch
        size += sum(map(len, batch))
        n += 1
    return "".join(parts).encode()


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_frames(service, desktop, rounds: int) -> list[float]:
    target = {"agent": "static", "protocol": "vnc", "hostname": desktop.host,
              "port": desktop.port, "password": desktop.password}
    out = []
    for _ in range(rounds):
        reply = await asyncio.to_thread(service.create, target)
        ws = reply["websocket"]
        conn = await tornado.websocket.websocket_connect(
            f"ws://{ws['host']}:{ws['port']}{ws['path']}?token={ws['token']}",
            subprotocols=["guacamole"])
        opened = time.perf_counter()
        while True:
            message = await conn.read_message()
            if message is None:
                raise RuntimeError("tunnel closed before the first frame")
            if "4.sync," in message:
                out.append(time.perf_counter() - opened)
                break
        conn.close()
    return out


async def relay(workdir: pathlib.Path, stream: bytes) -> dict:
    async def serve(reader, writer):
        parser = protocol.Parser()
        while data := await reader.read(65536):   # the pool's probes hang up early
            for elements in parser.feed(data):
                if elements[0] == "select":
                    writer.write(protocol.encode("args", "VERSION_1_3_0", "hostname").encode())
                elif elements[0] == "connect":
                    writer.write(protocol.encode("ready", "$bench").encode())
                    view = memoryview(stream)
                    for i in range(0, len(view), 65536):
                        writer.write(view[i:i + 65536])
                        await writer.drain()
                    writer.close()
                    return

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    service = await asyncio.to_thread(start_service, workdir, f"127.0.0.1:{port}")
    try:
        reply = await asyncio.to_thread(service.create, {"hostname": "bench"})
        ws = reply["websocket"]
        conn = await tornado.websocket.websocket_connect(
            f"ws://{ws['host']}:{ws['port']}{ws['path']}?token={ws['token']}",
            subprotocols=["guacamole"], max_message_size=2**24)
        await conn.read_message()                     # tunnel id
        cpu0, t0 = cpu_seconds(service.process.pid), time.perf_counter()
        chars = messages = 0
        while True:
            message = await conn.read_message()
            if message is None:
                break
            chars += len(message)
            messages += 1
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(service.process.pid) - cpu0
    finally:
        service.stop()
        server.close()
    instructions = stream.count(b";")     # base64 and our values hold no ';'
    mb = len(stream) / 2**20
    assert chars >= len(stream) * 0.99, (chars, len(stream))
    return {"mb": round(mb, 1), "seconds": round(elapsed, 3),
            "mb_per_s": round(mb / elapsed, 1),
            "instructions_per_s": round(instructions / elapsed),
            "ws_messages": messages,
            "relay_cpu_s_per_100mb": round(cpu * 100 / mb, 3)}


def codec(stream: bytes) -> dict:
    framer = protocol.Framer()
    t0 = time.perf_counter()
    for i in range(0, len(stream), 65536):
        framer.feed(stream[i:i + 65536])
    elapsed = time.perf_counter() - t0
    return {"mb_per_s": round(len(stream) / 2**20 / elapsed, 1),
            "instructions_per_s": round(stream.count(b";") / elapsed)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=200)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-bench-"))
    stream = guacd_like_stream(args.mb)
    result: dict = {"stream_instructions": stream.count(b";"), "cpus": os.cpu_count()}
    result["codec"] = codec(stream)
    result["relay"] = asyncio.run(relay(workdir / "relay", stream))
    guacd = demo.start_guacd(workdir / "guacd")
    desktop = demo.start_desktop(workdir / "desktop", "bench123")
    service = start_service(workdir / "service", f"{guacd.host}:{guacd.port}")
    try:
        frames = asyncio.run(first_frames(service, desktop, args.rounds))
    finally:
        service.stop()
        desktop.stop()
        guacd.stop()
    result["first_frame_ms"] = {"median": round(statistics.median(frames) * 1000, 1),
                                "min": round(min(frames) * 1000, 1),
                                "max": round(max(frames) * 1000, 1), "rounds": len(frames)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
