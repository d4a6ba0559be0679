"""The live tunnels this instance holds, and the one loop that watches them all.

A tunnel attaches with a *stop* callback; whatever ends a console (a close on any instance,
the expiry sweep, its deadline, a page that came back through another tunnel) ends its
tunnels through :meth:`LiveTunnels.stop`. One task watches every tunnel, not one task each,
which cost memory and store reads per tunnel; each of its jobs is one query whatever the
number of tunnels:

- every ``WATCH_EVERY`` seconds, end the tunnels of consoles closed lately by any instance,
  so that a DELETE answered elsewhere ends the tunnel here at once;
- every ``RECHECK`` seconds and at the earliest deadline, re-read all live consoles:
  extensions, deadlines, consoles removed, consoles taken over elsewhere;
- every ``REPORT_EVERY`` seconds, report the tunnels' byte counts for the sessions list.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from .audit import REPORT_EVERY, WATCH_EVERY, Audit, LiveTunnel
from .grants import GrantStore

log = logging.getLogger(__name__)

RECHECK = 10.0   # seconds between re-reads of all live consoles (extensions, removals)
TAKEN_OVER = "the console was opened again from this page"
Stopper = Callable[[str], None]     # called with the reason the tunnel must end


class LiveTunnels:
    def __init__(self, store: GrantStore, audit: Audit,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self._live: dict[str, set[Stopper]] = {}         # console id → its tunnels' stops
        self._held: dict[str, tuple[str, Stopper]] = {}  # tunnel id → (console id, stop)
        self._deadlines: dict[str, float] = {}           # of the live consoles, as last read
        self._watcher: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None

    def attach(self, console_id: str, stop: Stopper, tunnel: LiveTunnel | None = None,
               deadline: float | None = None) -> Callable[[], None]:
        """Register a live tunnel; the function returned unregisters it. With *tunnel* it is
        listed in the sessions list and audited; *deadline* is its console's, as the tunnel's
        grant had it (extensions count at the next re-read)."""
        self._live.setdefault(console_id, set()).add(stop)
        if tunnel is not None:
            self._held[tunnel.tunnel_id] = (console_id, stop)
            self.audit.tunnel_started(tunnel)
        if deadline is not None:
            self._deadlines[console_id] = deadline
        if self._wakeup is not None:
            self._wakeup.set()
        elif self._watcher is None or self._watcher.done():
            with contextlib.suppress(RuntimeError):     # no event loop: no tunnel to watch
                self._watcher = asyncio.get_running_loop().create_task(self._watch())

        def detach() -> None:
            if tunnel is not None:
                self._held.pop(tunnel.tunnel_id, None)
                self.audit.tunnels.pop(tunnel.tunnel_id, None)
            stoppers = self._live.get(console_id)
            if stoppers is not None:
                stoppers.discard(stop)
                if not stoppers:
                    del self._live[console_id]
                    self._deadlines.pop(console_id, None)
        return detach

    def stop(self, console_id: str, reason: str) -> None:
        """End every tunnel of this console held here."""
        for stop in list(self._live.get(console_id, ())):
            stop(reason)

    def stop_all(self, reason: str) -> None:
        for console_id in list(self._live):
            self.stop(console_id, reason)

    def count(self, console_id: str) -> int:
        return len(self._live.get(console_id, ()))

    def total(self) -> int:
        return sum(map(len, self._live.values()))

    async def _watch(self) -> None:
        """Run the jobs while any tunnel lives; a failing job (the store is down, say) is
        retried a second later, not in a spin."""
        jobs: dict[Callable[[], Awaitable[None]], float] = {
            self._end_closed_elsewhere: WATCH_EVERY, self._recheck: RECHECK,
            self.audit.report: REPORT_EVERY}
        last = dict.fromkeys(jobs, -math.inf)
        last[self.audit.report] = time.monotonic()      # a new tunnel reports itself
        self._wakeup = wakeup = asyncio.Event()
        try:
            while self._live:
                wakeup.clear()
                tick = time.monotonic()
                due = [job for job, every in jobs.items() if tick - last[job] >= every]
                if self._recheck not in due and \
                        any(d <= self.clock() for d in self._deadlines.values()):
                    due.append(self._recheck)
                failed = False
                for job in due:
                    last[job] = tick
                    try:
                        await job()
                    except Exception as e:
                        failed = True
                        log.warning("watching the live consoles: %s failed: %s",
                                    getattr(job, "__name__", "a job").strip("_"), e)
                tick, now = time.monotonic(), self.clock()
                wait = min([every - (tick - last[job]) for job, every in jobs.items()]
                           + [d - now for d in self._deadlines.values()])
                if failed:
                    wait = max(wait, 1.0)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), max(wait, 0.01))
        finally:
            self._wakeup = None

    async def _end_closed_elsewhere(self) -> None:
        for closed in await self.audit.closed_lately():
            if closed.console_id in self._live:
                self.stop(closed.console_id, closed.reason or "closed")

    async def _recheck(self) -> None:
        ids, held = list(self._live), dict(self._held)   # as they were when the store was read
        ends = await asyncio.to_thread(self.store.session_ends, ids)
        now = self.clock()
        # A page that came back through another instance holds its console now: the tunnel
        # here that held it before ends (its browser is gone, by a path not noticed yet).
        for tunnel_id, (console_id, stop) in held.items():
            end = ends.get(console_id)
            holder = end.live_tunnel if end is not None else None
            if holder is not None and holder != tunnel_id and tunnel_id in self._held:
                stop(TAKEN_OVER)
        for console_id in ids:
            if console_id not in self._live:
                continue
            end = ends.get(console_id)
            if end is None:
                why = "console removed"
            elif end.closed_at is not None:
                why = end.close_reason or "closed"
            elif end.deadline is None or now >= end.deadline:
                why = "time limit reached"
            else:
                self._deadlines[console_id] = end.deadline
                continue
            self._deadlines.pop(console_id, None)
            for stop in self._live.pop(console_id, ()):     # stopped once, not at each look
                stop(why)
