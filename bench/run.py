"""guacbridge's benchmark: its relay beside guacamole-lite, guapy and a bare relay, in one run.

Everything runs on this machine at once — the guacd stand-in replaying a recording of real
guacd, the four relays, the client — and the relay measurements are interleaved round by
round, so that on a noisy machine the ratios hold even when the absolute numbers move.
Prints one JSON document and writes it to bench/results.json; bench/report.py draws the
chart and prints the tables of docs/performance.rst from it.

Phases (each one can be left out with --skip):
- relay: per round and relay, connect → first instruction over fresh consoles, a saturated
  transfer (MB/s, instructions/s, relay CPU per 100 MB, ping echoes under load) and a stream
  paced at 1 MB/s (ping echoes);
- idle: 500, 1000, 2000 consoles held open (bench/idle_phase.py: a ping every 500 ms each, the
  stand-in's nop every 5 s): relay CPU, RSS per console, ping p50/p99 on a sample;
  then a stalled browser for 10 s: the relay's growth;
- provisioning: bench/provision.py (console creation on SQLite and MySQL, broker jobs);
- profile: bench/profile_relay.py, py-spy on guacbridge saturated: its busiest functions.

Run: make -C bench   (or: .venv/bin/python bench/run.py [--quick])
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import idle_phase  # noqa: E402
import relays  # noqa: E402
from stats import percentile  # noqa: E402
from wsclient import WsClient  # noqa: E402

RECORDING = BENCH / "recording.guac.gz"
MB = 2**20


def codec(repeat: int = 20) -> dict:
    """guacbridge's Framer alone on the recording, in the relay's 64 KiB reads."""
    from guacbridge import protocol
    data = gzip.decompress(RECORDING.read_bytes())
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    framer = protocol.Framer()
    t0 = time.process_time()           # CPU time: the machine may be busy with others
    for _ in range(repeat):
        for chunk in chunks:
            framer.feed(chunk)
    seconds = time.process_time() - t0
    return {"mb_per_s": round(len(data) * repeat / MB / seconds, 1),
            "instructions_per_s": round(data.count(b";") * repeat / seconds)}


def recording_facts() -> dict:
    data = gzip.decompress(RECORDING.read_bytes())
    return {"bytes": len(data), "instructions": data.count(b";"),
            "first": data[:data.index(b";") + 1]}


async def open_client(relay: relays.Relay, mode: str, marker: bytes) -> WsClient:
    host, port, path = await asyncio.to_thread(relay.url, mode)
    return await WsClient.connect(host, port, path, marker)


async def pinging(clients: list[WsClient], interval: float) -> None:
    """Each client pings once per *interval*, spread evenly over it."""
    steps = 10
    while True:
        for step in range(steps):
            for client in clients[step::steps]:
                if not client.closed.done():
                    client.ping()
            await asyncio.sleep(interval / steps)




# -- phase 1: the relay ----------------------------------------------------------------------
async def first_message(relay: relays.Relay, marker: bytes, count: int) -> list[float]:
    out = []
    for _ in range(count):
        client = await open_client(relay, "idle", marker)
        deadline = time.perf_counter() + 5
        while client.first_data_at is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        if client.first_data_at is not None:
            out.append(client.first_data_at - client.started)
        client.close()
        await asyncio.sleep(0.02)
    return out


async def saturated(relay: relays.Relay, facts: dict, megabytes: float,
                    ping_every: float) -> dict:
    total = int(megabytes * MB)
    client = await open_client(relay, f"sat-{total}", facts["first"])
    cpu0 = relay.cpu_seconds()
    pings = asyncio.ensure_future(pinging([client], ping_every))
    try:
        closed_at = await asyncio.wait_for(asyncio.shield(client.closed), 600)
    finally:
        pings.cancel()
    cpu = relay.cpu_seconds() - cpu0
    seconds = closed_at - (client.first_data_at or client.started)
    got = client.bytes / MB
    instructions = client.bytes * facts["instructions"] / facts["bytes"]
    return {"mb": round(got, 1), "mb_per_s": got / seconds,
            "instructions_per_s": instructions / seconds, "ws_messages": client.messages,
            "cpu_s_per_100mb": cpu * 100 / got if got else None,
            "ping_p50": percentile(client.rtts, 50), "ping_p99": percentile(client.rtts, 99),
            "complete": client.bytes >= total}


async def paced(relay: relays.Relay, facts: dict, seconds: float, ping_every: float) -> dict:
    client = await open_client(relay, f"paced-{MB}-{int(seconds)}", facts["first"])
    cpu0 = relay.cpu_seconds()
    pings = asyncio.ensure_future(pinging([client], ping_every))
    try:
        await asyncio.wait_for(asyncio.shield(client.closed), seconds + 30)
    finally:
        pings.cancel()
    return {"ping_p50": percentile(client.rtts, 50), "ping_p99": percentile(client.rtts, 99),
            "pings": len(client.rtts), "cpu_percent": (relay.cpu_seconds() - cpu0) / seconds * 100}


def summarise(rounds: list[dict], scale: dict[str, float]) -> dict:
    """Median with min and max over rounds for each measure."""
    out = {}
    for key, factor in scale.items():
        values = [r[key] for r in rounds if r.get(key) is not None]
        if values:
            out[key] = {"median": round(statistics.median(values) * factor, 2),
                        "min": round(min(values) * factor, 2),
                        "max": round(max(values) * factor, 2)}
        else:
            out[key] = None
    return out


async def relay_phase(parts: list[relays.Relay], facts: dict, args) -> dict:
    results: dict[str, list[dict]] = {relay.name: [] for relay in parts}
    for n in range(args.rounds):
        order = parts[n % len(parts):] + parts[:n % len(parts)]   # a different one goes first
        for relay in order:
            row: dict = {}
            firsts = await first_message(relay, facts["first"], args.connects)
            row["first_message"] = statistics.median(firsts) if firsts else None
            sat = await saturated(relay, facts, args.mb, args.ping_every)
            row.update({k: sat[k] for k in ("mb_per_s", "instructions_per_s", "cpu_s_per_100mb",
                                            "ws_messages", "complete")})
            row["ping_p50_saturated"], row["ping_p99_saturated"] = sat["ping_p50"], sat["ping_p99"]
            pace = await paced(relay, facts, args.paced_seconds, args.ping_every)
            row["ping_p50_paced"], row["ping_p99_paced"] = pace["ping_p50"], pace["ping_p99"]
            row["cpu_percent_paced"] = pace["cpu_percent"]
            results[relay.name].append(row)
            print(f"round {n + 1} {relay.name}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})}",
                  file=sys.stderr, flush=True)
    scale = {"mb_per_s": 1, "instructions_per_s": 1, "cpu_s_per_100mb": 1,
             "first_message": 1000, "ping_p50_paced": 1000, "ping_p99_paced": 1000,
             "ping_p50_saturated": 1000, "ping_p99_saturated": 1000, "cpu_percent_paced": 1}
    out = {}
    for relay in parts:
        rows = results[relay.name]
        out[relay.name] = {"label": relay.label, **summarise(rows, scale),
                           "ws_messages_per_mb": round(rows[-1]["ws_messages"] / args.mb, 1),
                           "complete": all(r["complete"] for r in rows)}
    return out


# -- phase 2: idle consoles (bench/idle_phase.py) and a stalled browser -------------------
async def stalled(relay: relays.Relay, marker: bytes, seconds: float) -> dict:
    """A browser that keeps pinging but reads nothing: what the relay holds meanwhile."""
    client = await open_client(relay, f"sat-{1 << 40}", marker)
    while client.first_data_at is None:
        await asyncio.sleep(0.01)
    client.stall()
    await asyncio.sleep(0.5)
    base = peak = relay.rss_bytes()
    pings = asyncio.ensure_future(pinging([client], 0.5))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0.25)
        peak = max(peak, relay.rss_bytes())
    pings.cancel()
    client.close()
    await asyncio.sleep(1)
    return {"rss_growth_mib": round((peak - base) / MB, 2), "seconds": seconds,
            "rss_after_close_mib": round(relay.rss_bytes() / MB, 1)}


# -- running it all ---------------------------------------------------------------------------
def machine() -> dict:
    model = ""
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "node": subprocess.run(["node", "--version"], capture_output=True,
                                   text=True).stdout.strip(),
            "kernel": platform.release(), "load_average_at_start": round(load[0], 2)}


async def bench(args, workdir: pathlib.Path) -> dict:
    facts = recording_facts()
    result: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime()),
                    "parameters": {k: v for k, v in vars(args).items() if k not in ("skip", "out")},
                    "recording": {"mb": round(facts["bytes"] / MB, 2),
                                  "instructions": facts["instructions"]}}
    result["codec"] = codec()
    standin = relays.Standin(workdir)
    parts: list[relays.Relay] = []
    try:
        for cls in (relays.BareNode, relays.Bare, relays.Guacbridge, relays.GuacamoleLite, relays.Guapy,
                    relays.GuacbridgePythonScan, relays.GuacbridgeAsyncio):
            if cls.name not in args.relays:
                continue
            try:
                parts.append(cls(workdir, standin.port))
            except (RuntimeError, OSError) as e:
                result.setdefault("relay_errors", {})[cls.name] = str(e)[-1500:]
        if "relay" not in args.skip:
            result["relay"] = await relay_phase(parts, facts, args)
        if "idle" not in args.skip:
            result["idle"] = {}
            # Fresh processes, so that what the transfers left behind (a heap grown by
            # guacamole-lite's buffering, say) is not in the baseline; the Python-scan variant
            # is about throughput and is left out to spare the run's time.
            for i, relay in enumerate(parts):
                relay.stop()
                if relay.name != "guacbridge_py":
                    parts[i] = type(relay)(workdir, standin.port)
            parts = [r for r in parts if r.process.poll() is None]
            for relay in parts:
                result["idle"][relay.name] = await idle_phase.idle(
                    relay, facts["first"], args.consoles, args.idle_seconds,
                    args.step_seconds, args.sample, args.client_processes)
            stalls = await asyncio.gather(*(stalled(r, facts["first"], args.stall_seconds)
                                            for r in parts if r.name != "bare_node"))
            result["stalled"] = {r.name: s for r, s in
                                 zip([r for r in parts if r.name != "bare_node"], stalls)}
    finally:
        for part in parts:
            part.stop()
        standin.stop()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small numbers, for development")
    p.add_argument("--rounds", type=int)
    p.add_argument("--mb", type=float, help="MB per saturated transfer")
    p.add_argument("--skip", nargs="*", default=[],
                   choices=["relay", "idle", "provisioning", "profile"])
    p.add_argument("--relays", nargs="*", default=[
        "bare_node", "bare", "guacbridge", "guacamole_lite", "guapy", "guacbridge_py",
        "guacbridge_asyncio"])
    p.add_argument("--consoles", type=int, nargs="*", help="the idle phase's steps")
    p.add_argument("--out", type=pathlib.Path, default=BENCH / "results.json")
    args = p.parse_args()
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.mb = args.mb or (20 if quick else 64)
    args.connects = 5 if quick else 10
    args.paced_seconds = 2 if quick else 5
    args.ping_every = 0.02
    args.consoles = args.consoles or ([100, 200] if quick else [500, 1000, 2000])
    args.idle_seconds = 3 if quick else 15      # the window at the last step
    args.step_seconds = 2 if quick else 5       # at the others
    args.sample = 20 if quick else 100          # consoles whose echoes are timed
    args.client_processes = 3
    args.stall_seconds = 3 if quick else 10
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="guacbridge-bench-"))
    try:
        result = asyncio.run(bench(args, workdir))
        if "provisioning" not in args.skip:
            import provision
            result["provisioning"] = provision.run(workdir / "provisioning", quick)
        if "profile" not in args.skip:
            # Where the relay's time goes when saturated: py-spy's busiest functions.
            import profile_relay
            try:
                result["profile_saturated"] = profile_relay.profile(
                    "saturated", 3 if quick else 8, 12)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                result["profile_saturated"] = {"error": str(e)[:500]}
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}", file=sys.stderr)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = json.dumps(result, indent=2)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
