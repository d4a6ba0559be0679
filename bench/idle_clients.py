"""Browsers of idle consoles, for bench/run.py's idle phase: one process holding some of them.

Each console pings its tunnel every 500 ms (guacamole-common-js's ``PING_FREQUENCY``) in a
10 ms slot of its own within the period, whatever its echoes do (open loop: a late echo never
delays the next ping). bench/run.py starts several of these processes, so that the client is
not what is slow: one holds the sample whose echoes are timed, lightly loaded, the others the
rest. Each process notes how late its pings left against their schedule — its own lag — and
reports it beside the echoes, so a reader can tell the relay's latency from the client's.

Speaks JSON lines on stdin/stdout, one answer per request:

- ``{"op": "open", "urls": [[host, port, path, slot], ...], "marker": "..."}``: opens them
  (a console counts once its stream's first instruction, *marker*, has arrived);
- ``{"op": "reset"}``: a measuring window starts (echo times, lags and counts cleared);
- ``{"op": "stats"}``: the window's numbers (:func:`Pool.stats`; with ``"raw": true`` also
  every echo time, for percentiles over all processes);
- ``{"op": "quit"}``: closes every console and exits.

Run: python bench/idle_clients.py   (by bench/run.py)
"""
from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from stats import ms, percentile  # noqa: E402
from wsclient import WsClient  # noqa: E402

PERIOD = 0.5                  # guacamole-common-js's PING_FREQUENCY
SLOTS = 50                    # 10 ms apart
BATCH = 25                    # connections opened at once (the relays' listen backlog)




class Pool:
    """The consoles of this process and the schedule that pings them."""

    def __init__(self) -> None:
        self.clients: list[WsClient] = []
        self.slots: list[list[WsClient]] = [[] for _ in range(SLOTS)]
        self.lags: list[float] = []
        self.pings = 0
        self.window = time.perf_counter()
        self.cpu = time.process_time()

    async def open(self, urls: list[list], marker: bytes) -> dict:
        opened, failed, error = 0, 0, None
        for i in range(0, len(urls), BATCH):
            batch = urls[i:i + BATCH]
            results = await asyncio.gather(*(self._open(u, marker) for u in batch),
                                           return_exceptions=True)
            for url, client in zip(batch, results):
                if isinstance(client, BaseException):
                    failed += 1
                    error = error or f"{type(client).__name__} {client}"[:200]
                else:
                    opened += 1
                    self.clients.append(client)
                    self.slots[int(url[3]) % SLOTS].append(client)
        return {"opened": opened, "failed": failed, "error": error, "alive": self.alive()}

    @staticmethod
    async def _open(url: list, marker: bytes) -> WsClient:
        client = await asyncio.wait_for(WsClient.connect(url[0], int(url[1]), url[2], marker),
                                        30)
        deadline = time.perf_counter() + 30
        while client.first_data_at is None:
            if client.closed.done() or time.perf_counter() > deadline:
                client.close()
                raise ConnectionError("no first instruction")
            await asyncio.sleep(0.005)
        return client

    def alive(self) -> int:
        return sum(1 for c in self.clients if not c.closed.done())

    async def schedule(self) -> None:
        """Every 10 ms, the pings of that slot's consoles; late slots are sent at once."""
        start = time.perf_counter()
        k = 0
        while True:
            due = start + k * PERIOD / SLOTS
            delay = due - time.perf_counter()
            await asyncio.sleep(max(delay, 0))
            slot = self.slots[k % SLOTS]
            sent = 0
            for client in slot:
                if not client.closed.done():
                    client.ping()
                    sent += 1
            if sent:
                self.pings += sent
                self.lags.append(time.perf_counter() - due)
            k += 1

    def reset(self) -> dict:
        for client in self.clients:
            client.rtts.clear()
        self.lags.clear()
        self.pings = 0
        self.window = time.perf_counter()
        self.cpu = time.process_time()
        return {"ok": True}

    def stats(self, raw: bool = False) -> dict:
        """Echo times (ms) of this process's consoles, pings sent and answered, pings still
        unanswered after a second, how late the pings left (send lag, ms) and this process's
        CPU, all since the last reset."""
        now = time.perf_counter()
        seconds = now - self.window
        rtts = [r for c in self.clients for r in c.rtts]
        lost = sum(1 for c in self.clients for sent in c.sent.values()
                   if self.window < sent < now - 1)
        out = {"consoles": len(self.clients), "alive": self.alive(), "seconds": round(seconds, 2),
                "pings": self.pings, "echoes": len(rtts), "unanswered_after_1s": lost,
                "ping_p50_ms": ms(percentile(rtts, 50)), "ping_p99_ms": ms(percentile(rtts, 99)),
                "ping_max_ms": ms(max(rtts, default=None)),
                "send_lag_p50_ms": ms(percentile(self.lags, 50)),
                "send_lag_p99_ms": ms(percentile(self.lags, 99)),
                "send_lag_max_ms": ms(max(self.lags, default=None)),
                "cpu_percent": round((time.process_time() - self.cpu) / seconds * 100, 1)}
        if raw:
            out["rtts_ms"] = [round(r * 1000, 3) for r in rtts]
        return out

    def quit(self) -> dict:
        for client in self.clients:
            client.close()
        return {"ok": True}


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pool = Pool()
    pinging = asyncio.ensure_future(pool.schedule())
    while line := await reader.readline():
        request = json.loads(line)
        op = request["op"]
        if op == "open":
            answer = await pool.open(request["urls"], request["marker"].encode("latin-1"))
        elif op == "reset":
            answer = pool.reset()
        elif op == "stats":
            answer = pool.stats(request.get("raw", False))
        else:
            answer = pool.quit()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if op == "quit":
            break
    pinging.cancel()
    await asyncio.sleep(0.2)            # the close frames leave


if __name__ == "__main__":
    asyncio.run(main())
