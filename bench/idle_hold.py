"""Hold N idle consoles open on one relay and profile it meanwhile (for development).

Run: .venv/bin/python bench/idle_hold.py [guacbridge|bare_node|bare|...] [N] [SECONDS]
With BENCH_SPY=FILE, py-spy records the relay for 15 s of the window into FILE (raw).
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile

BENCH = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import idle_phase  # noqa: E402
import relays  # noqa: E402
import run  # noqa: E402


async def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "guacbridge"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-idle-"))
    standin = relays.Standin(workdir)
    cls = {c.name: c for c in vars(relays).values()
           if isinstance(c, type) and issubclass(c, relays.Relay) and c.name}[name]
    extra = os.environ.get("BENCH_RELAY_PYTHONPATH")     # a sitecustomize, say
    relay = cls(workdir, standin.port, PYTHONPATH=f"{BENCH.parent}:{extra}") if extra \
        else cls(workdir, standin.port)
    print(f"relay log: {relay.log}", file=sys.stderr, flush=True)
    spy = os.environ.get("BENCH_SPY")
    cpu_seconds, calls = relay.cpu_seconds, []

    def cpu_and_spy() -> float:        # the window starts with the first CPU reading
        calls.append(1)
        if spy and len(calls) == 1:
            subprocess.Popen(["py-spy", "record", "-p", str(relay.pid), "-d", "15", "-r", "50",
                              "-f", "raw", "-o", spy, "--nonblocking", *os.environ.get(
                                  "BENCH_SPY_OPTIONS", "").split()],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cpu_seconds()
    relay.cpu_seconds = cpu_and_spy
    try:
        facts = run.recording_facts()
        out = await idle_phase.idle(relay, facts["first"], [n], seconds, seconds, 100, 3)
        print(json.dumps(out, indent=1))
    finally:
        relay.stop()
        standin.stop()


if __name__ == "__main__":
    asyncio.run(main())
