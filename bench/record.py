"""Record what real guacd sends for a busy screen, for the stand-in to replay.

Starts guacd 1.3.0 and Xvnc (the demo parts) with an xterm scrolling a long listing, connects
as a browser would (answering every ``sync``, so guacd keeps sending), and writes the stream
after ``ready`` — whole instructions only — gzipped to ``bench/recording.guac.gz``.

Run: .venv/bin/python bench/record.py [--mb 4]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guacbridge import demo, guacd, protocol  # noqa: E402

OUT = ROOT / "bench" / "recording.guac.gz"


async def record(desktop: demo.Desktop, server: demo.Guacd, megabytes: float) -> str:
    conn = await guacd.connect((server.host, server.port), "vnc",
                               {"hostname": desktop.host, "port": str(desktop.port),
                                "password": desktop.password}, guacd.Capabilities())
    parts, size = [conn.pending], len(conn.pending)
    while size < megabytes * 2**20:
        data = await asyncio.wait_for(conn.reader.read(guacd.READ_SIZE), 10)
        if not data:
            raise EOFError("guacd closed the connection")
        text = conn.framer.feed(data)
        parts.append(text)
        size += len(text)
        for raw in protocol.split(text):
            if raw.startswith("4.sync,"):
                conn.writer.write(raw.encode())
    conn.close()
    return "".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=4)
    args = p.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-record-"))
    server = demo.start_guacd(workdir / "guacd")
    desktop = demo.start_desktop(workdir / "desktop", "record1", geometry="1280x800")
    try:
        desktop.run("scroller", [shutil.which("xterm") or "xterm", "-geometry", "200x56+0+0",
                                 "-e", "sh", "-c", "while :; do ls -lR /usr; done"])
        stream = asyncio.run(asyncio.wait_for(record(desktop, server, args.mb), 120))
    finally:
        desktop.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    opcodes = collections.Counter()
    for raw in protocol.split(stream):
        opcodes[protocol.parse(raw)[0]] += len(raw)
    OUT.write_bytes(gzip.compress(stream.encode(), 9, mtime=0))
    total = sum(opcodes.values())
    print(f"{OUT.name}: {total / 2**20:.1f} MB, {stream.count(';')} instructions;",
          ", ".join(f"{op} {n * 100 / total:.1f} %" for op, n in opcodes.most_common(6)))


if __name__ == "__main__":
    main()
