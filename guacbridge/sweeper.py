"""The housekeeping every instance runs: expiry, the guacamole sink's clean-up, the purge
of old consoles, and the recordings' retention. Every step is idempotent, so several
instances sweeping one grant store at once do no harm."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .config import Settings
from .consoles import Consoles
from .events import ConsoleEvents
from .grants import GrantStore
from .guacamole_sink import GuacamoleSink
from .recordings import Recordings
from .store import call

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, settings: Settings, store: GrantStore, consoles: Consoles,
                 events: ConsoleEvents, recordings: Recordings,
                 sink: GuacamoleSink | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.consoles = consoles
        self.events = events
        self.recordings = recordings
        self.sink = sink
        self.clock = clock

    async def sweep(self) -> None:
        """One pass: close expired grants and the tunnels still open on them, and remove
        the Guacamole connections of ended consoles."""
        for ended in await call(self.store.expire, self.clock(),
                                self.settings.reconnect_window):
            grant = await self.consoles.current(ended.console_id)
            if grant is not None:
                await self.consoles.announce_closed(grant, ended.reason)
        if self.sink is not None:
            await self.sink.clean()
        await self.remove_old_recordings()

    async def forever(self, interval: float = 5.0, purge_every: int = 60) -> None:
        """Sweep every *interval* seconds; every *purge_every* passes, forget consoles
        closed longer than ``audit_retention`` ago."""
        passes = 0
        while True:
            try:
                await self.sweep()
                if passes % purge_every == 0:
                    await self.purge()
            except Exception:
                log.exception("expiry sweep failed; retrying")
            passes += 1
            await asyncio.sleep(interval)

    async def purge(self) -> int:
        """Delete consoles (and their events) closed more than audit_retention ago."""
        retention = self.settings.audit_retention
        purged = await call(self.store.purge, self.clock() - retention)
        if purged:
            log.info("purged %d console(s) closed over %d s ago, with their events", purged,
                     retention)
        return purged

    async def remove_old_recordings(self) -> None:
        """Delete recordings kept longer than the retention; each removal is an event."""
        if not self.recordings.enabled:
            return
        for console_id, name in await asyncio.to_thread(self.recordings.remove_expired):
            await self.events.record(console_id, "recording.removed", file=name,
                                     reason=f"older than the retention of"
                                            f" {self.recordings.retention} s")
