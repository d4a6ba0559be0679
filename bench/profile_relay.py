"""Where guacbridge's time goes: py-spy samples the running service under one workload.

Workloads: ``saturated`` (one console reading the recording as fast as it can), ``connect``
(fresh consoles opened one after another), ``idle`` (idle consoles pinging every 500 ms).
Prints the functions with the most samples, inclusive and self, as JSON, and keeps py-spy's
collapsed stacks (flamegraph input) in bench/profile-WORKLOAD.txt.

Run: .venv/bin/python bench/profile_relay.py saturated|connect|idle [--seconds 10]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import relays  # noqa: E402
import run  # noqa: E402


async def workload(name: str, relay: relays.Relay, seconds: float) -> None:
    facts = run.recording_facts()
    end = time.perf_counter() + seconds
    if name == "saturated":
        while time.perf_counter() < end:
            await run.saturated(relay, facts, 50, 0.02)
    elif name == "connect":
        while time.perf_counter() < end:
            await run.first_message(relay, facts["first"], 10)
    else:
        clients = [await run.open_client(relay, "idle", facts["first"]) for _ in range(300)]
        pings = asyncio.ensure_future(run.pinging(clients, 0.5))
        await asyncio.sleep(seconds)
        pings.cancel()
        for c in clients:
            c.close()


def summarise(collapsed: pathlib.Path, top: int = 25) -> dict:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" if " (" in f else f for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    pct = lambda c: [f"{n * 100 / total:5.1f} % {f}" for f, n in c.most_common(top)]
    return {"samples": total, "inclusive_percent": pct(inclusive), "self_percent": pct(own)}


def profile(workload_name: str, seconds: float, top: int = 25) -> dict:
    """Run *workload_name* against a fresh guacbridge under py-spy; the summary."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-profile-"))
    standin = relays.Standin(workdir)
    relay = relays.Guacbridge(workdir, standin.port)
    out = BENCH / f"profile-{workload_name}.txt"
    spy = subprocess.Popen([shutil.which("py-spy") or str(pathlib.Path(sys.executable).parent
                                                          / "py-spy"),
                            "record", "--pid", str(relay.pid), "--rate", "500", "--format",
                            "raw", "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        asyncio.run(workload(workload_name, relay, seconds))
    finally:
        spy.send_signal(2)
        spy.wait(30)
        relay.stop()
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return summarise(out, top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=["saturated", "connect", "idle"])
    p.add_argument("--seconds", type=float, default=10)
    args = p.parse_args()
    print(json.dumps(profile(args.workload, args.seconds), indent=1))


if __name__ == "__main__":
    main()
