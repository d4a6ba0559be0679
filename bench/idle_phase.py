"""The idle scenario: thousands of open consoles, each browser pinging every 500 ms.

guacd's side is the stand-in's ``idle`` mode (the recording's first instruction, then a
``nop`` every 5 s); the browsers are bench/idle_clients.py processes: one holds the *sample*
(the consoles whose echoes are timed, few enough that the process is never late), the others
the rest, all pinging open-loop. Consoles are opened in steps (500, 1000, 2000 by default), and
at each step, once it has settled, a window measures the relay's CPU (% of one core), its RSS
growth per console since one console was open, and the pings' echoes: p50/p99 over the
sample, p99 over every console, pings sent and answered — and each client process's own lag
(how late its pings left against their schedule), so that the numbers can be trusted.
"""
from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import time

import relays
from stats import percentile

BENCH = pathlib.Path(__file__).resolve().parent
MB = 2**20



class Client:
    """One bench/idle_clients.py process and its request/answer pipe."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.consoles = 0

    @classmethod
    async def start(cls) -> "Client":
        return cls(await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH / "idle_clients.py"), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=1 << 26))

    async def call(self, request: dict, timeout: float = 300) -> dict:
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("an idle client process ended")
        return json.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                await self.call({"op": "quit"}, 30)
                await asyncio.wait_for(self.process.wait(), 10)
            except (asyncio.TimeoutError, RuntimeError, ConnectionError):
                self.process.kill()
                await self.process.wait()


async def idle(relay: relays.Relay, marker: bytes, steps: list[int], seconds: float,
               step_seconds: float, sample: int, processes: int) -> dict:
    """The idle scenario against *relay*: one record per step of open consoles."""
    clients = [await Client.start() for _ in range(processes)]
    sampler, loaders = clients[0], clients[1:] or clients[:1]
    text = marker.decode("latin-1")
    out: dict = {"label": relay.label, "sample": sample, "client_processes": processes,
                 "steps": {}}
    opened = 0
    try:
        first = await sampler.call({"op": "open", "marker": text,
                                    "urls": [[*await asyncio.to_thread(relay.url, "idle"), 0]]})
        if first["opened"] != 1:
            raise RuntimeError(f"the first console did not open: {first['error']}")
        sampler.consoles = opened = 1
        await asyncio.sleep(1)
        base = relay.rss_bytes()
        for n in steps:
            t0 = time.perf_counter()
            urls = await asyncio.to_thread(relay.urls, "idle", n + 1 - opened)
            work: dict[Client, list] = {}
            for i, url in enumerate(urls):
                index = opened + i
                target = sampler if index < sample else loaders[(index // 25) % len(loaders)]
                work.setdefault(target, []).append([*url, index])
            answers = await asyncio.gather(*(c.call({"op": "open", "urls": u, "marker": text})
                                             for c, u in work.items()))
            for client, answer in zip(work, answers):
                client.consoles += answer["opened"]
            opened = sum(c.consoles for c in clients)
            failed = [a["error"] for a in answers if a["failed"]]
            if failed:
                # A relay that cannot keep up with the pings it has stops taking consoles.
                out["steps"][str(n)] = {"failed": failed[0], "opened": opened - 1}
                print(f"idle {relay.name} {n}: {out['steps'][str(n)]}", file=sys.stderr,
                      flush=True)
                break
            open_seconds = time.perf_counter() - t0
            await settle(relay)
            await asyncio.gather(*(c.call({"op": "reset"}) for c in clients))
            cpu0 = relay.cpu_seconds()
            window = seconds if n == steps[-1] else step_seconds
            await asyncio.sleep(window)
            cpu = relay.cpu_seconds() - cpu0
            stats = await asyncio.gather(*(c.call({"op": "stats", "raw": True}) for c in clients))
            rss = relay.rss_bytes()
            out["steps"][str(n)] = step = summarise(n, stats, cpu, rss - base, window)
            step["rss_mib"] = round(rss / MB, 1)
            step["open_rate_per_s"] = round(len(urls) / open_seconds)
            print(f"idle {relay.name} {n}: {json.dumps(step)}", file=sys.stderr, flush=True)
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
    await asyncio.sleep(1)
    return out


async def settle(relay: relays.Relay, most: float = 12) -> None:
    """Wait until the opening's work is done: the relay's CPU over one second no longer
    falling (within 10 %), at least 2 s and at most *most*."""
    await asyncio.sleep(1)
    end = time.perf_counter() + most - 1
    last = None
    while time.perf_counter() < end:
        cpu0 = relay.cpu_seconds()
        await asyncio.sleep(1)
        cpu = relay.cpu_seconds() - cpu0
        if last is not None and cpu >= 0.9 * last:
            return
        last = cpu


def summarise(n: int, stats: list[dict], cpu: float, rss_growth: int, seconds: float) -> dict:
    """One step's record from the client processes' windows (the first holds the sample)."""
    sample = stats[0]["rtts_ms"]
    every = [r for s in stats for r in s["rtts_ms"]]
    pings = sum(s["pings"] for s in stats)
    return {
        "consoles": n, "alive": sum(s["alive"] for s in stats) - 1,
        "cpu_percent": round(cpu / seconds * 100, 1),
        "rss_kib_per_console": round(rss_growth / n / 1024, 1),
        "ping_p50_ms": percentile(sample, 50), "ping_p99_ms": percentile(sample, 99),
        "ping_max_ms": max(sample, default=None), "sample_echoes": len(sample),
        "ping_p50_all_ms": percentile(every, 50), "ping_p99_all_ms": percentile(every, 99),
        "pings_per_s": round(pings / seconds), "expected_pings_per_s": round((n + 1) * 2),
        "echoes_per_s": round(len(every) / seconds),
        "unanswered_after_1s": sum(s["unanswered_after_1s"] for s in stats),
        "client": {
            "send_lag_p99_ms": max((s["send_lag_p99_ms"] or 0) for s in stats),
            "send_lag_max_ms": max((s["send_lag_max_ms"] or 0) for s in stats),
            "sample_send_lag_p99_ms": stats[0]["send_lag_p99_ms"],
            "processes": [{k: s[k] for k in ("consoles", "cpu_percent", "send_lag_p50_ms",
                                              "send_lag_p99_ms", "send_lag_max_ms")}
                          for s in stats]}}
