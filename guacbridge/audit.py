"""Audit: what happened to each console (events), and which tunnels live where (sessions).

Events are rows of ``console_event``: a kind and a small JSON object, never a token, a
password or any other guacd parameter. The core (``consoles.py``) writes ``created``,
``consumed``, ``refused``, ``extended`` and ``closed``; the tunnel's start and end are
``tunnel_started`` and ``tunnel_ended`` (with its bytes each way). Other features add their
own kinds through :meth:`Audit.record`.

While an instance holds live tunnels, the core's one watcher loop (``Consoles._watch_live``)
asks :meth:`Audit.closed_lately` twice a second which consoles were closed (one query,
whatever the number of tunnels), so that a ``DELETE`` answered by another instance ends the
tunnel here at once, and every few seconds has :meth:`Audit.report` write the tunnels' byte
counts for ``GET /api/v1/sessions``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from .grants import Grant

log = logging.getLogger(__name__)

WATCH_EVERY = 0.5      # seconds between looks for consoles closed elsewhere
LOOK_BACK = 10.0       # how far back each look reaches (clocks differ a little; past that
                       # the tunnel's own 10 s recheck of its grant still ends it)
REPORT_EVERY = 5.0     # seconds between reports of the live tunnels' byte counts
PURGE_BATCH = 500
# Keys an event may never carry: the data would be a secret.
_SECRET_WORDS = ("token", "password", "passphrase", "private-key", "private_key", "secret")


class EventRow(NamedTuple):
    at: float
    kind: str
    instance: str
    data: str                    # JSON


class Closed(NamedTuple):
    """A console closed lately, by any instance."""
    console_id: str
    reason: str | None


class TunnelRow(NamedTuple):
    """A live tunnel as its instance reports it, and the sessions list reads it back."""
    tunnel_id: str
    console_id: str
    instance: str
    client_address: str | None
    user_agent: str | None
    started_at: float
    bytes_out: int
    bytes_in: int
    seen_at: float


class InUse(NamedTuple):
    """A console in use and the row of the tunnel that holds it, if one does."""
    grant: Grant
    tunnel: TunnelRow | None


class AuditStore(Protocol):
    """What the grant stores add for audit (``store/sql.py``)."""

    def add_event(self, console_id: str, at: float, kind: str, instance: str,
                  data: str) -> None: ...

    def events(self, console_id: str) -> list[EventRow]:
        """Oldest first."""

    def closed_since(self, since: float) -> list[Closed]:
        """The consoles closed at or after *since*."""

    def report_tunnels(self, rows: list[TunnelRow]) -> None:
        """Insert or update live tunnels."""

    def tunnel_gone(self, tunnel_id: str) -> None: ...

    def sessions(self) -> list[InUse]:
        """Open, used consoles with their current tunnel's row."""

    def purge(self, before: float, batch: int = PURGE_BATCH) -> int:
        """Delete consoles closed before *before*, their events and tunnel rows; how many."""


@dataclasses.dataclass(frozen=True)
class Client:
    """Who is at the other end of a tunnel or page request."""
    address: str | None = None
    user_agent: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"client_address": self.address,
                "user_agent": (self.user_agent or "")[:512] or None}


@dataclasses.dataclass
class LiveTunnel:
    """A tunnel this instance holds; *counts* gives (bytes to the browser, bytes from it)."""
    tunnel_id: str
    console_id: str
    client: Client
    started_at: float
    counts: Callable[[], tuple[int, int]] = lambda: (0, 0)
    reported: tuple[int, int] = (-1, -1)


def check_data(data: dict[str, Any]) -> None:
    """An event carrying something named like a secret is a bug: fail loudly."""
    for key in data:
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"an event may not carry {key!r}")


class Audit:
    def __init__(self, store: AuditStore, instance: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.instance = instance
        self.clock = clock
        self.tunnels: dict[str, LiveTunnel] = {}
        self._pending: set[asyncio.Future] = set()   # writes in flight (kept from the GC)
        # One writer thread: events are written in the order they happened, also those
        # written in the background (record_soon).
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "guacbridge-audit")

    async def record(self, console_id: str, kind: str, **data: Any) -> None:
        """Write one event. A store that fails is logged, not raised: the console's own
        operation has succeeded or failed by then and says so itself."""
        check_data(data)
        at, text = self.clock(), json.dumps(data, default=str)
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._writer, self.store.add_event, console_id, at, kind, self.instance, text)
        except Exception as e:
            log.warning("console %s: event %s not recorded: %s", console_id, kind, e)

    def record_soon(self, console_id: str, kind: str, **data: Any) -> None:
        """Write an event without waiting for it: for the way into a console, which
        should not wait for the disk (``events`` still sees it)."""
        check_data(data)
        task = asyncio.ensure_future(self.record(console_id, kind, **data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for this instance's writes in flight, so that what it reads back includes
        what it has done (other instances' are a report interval behind at most)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def events(self, console_id: str) -> list[dict[str, Any]]:
        await self.settle()
        rows = await asyncio.to_thread(self.store.events, console_id)
        return [{"at": iso(r.at), "kind": r.kind, "instance": r.instance,
                 "data": json.loads(r.data)} for r in rows]

    # -- live tunnels -----------------------------------------------------------------

    def tunnel_started(self, tunnel: LiveTunnel) -> None:
        """Register a tunnel and report it, without waiting for the store."""
        self.tunnels[tunnel.tunnel_id] = tunnel
        report = asyncio.ensure_future(self.report([tunnel]))
        self._pending.add(report)
        report.add_done_callback(self._pending.discard)
        self.record_soon(tunnel.console_id, "tunnel_started", tunnel_id=tunnel.tunnel_id,
                         **tunnel.client.fields())

    async def tunnel_ended(self, console_id: str, tunnel_id: str, reason: str,
                           bytes_out: int, bytes_in: int, seconds: float | None) -> None:
        self.tunnels.pop(tunnel_id, None)
        await self.record(console_id, "tunnel_ended", tunnel_id=tunnel_id, reason=reason,
                          bytes_to_browser=bytes_out, bytes_from_browser=bytes_in,
                          seconds=None if seconds is None else round(seconds, 1))
        try:
            await asyncio.to_thread(self.store.tunnel_gone, tunnel_id)
        except Exception as e:
            log.warning("console %s: tunnel %s not unlisted: %s", console_id, tunnel_id, e)

    async def closed_lately(self) -> list[Closed]:
        """The consoles closed in the last LOOK_BACK seconds, by any instance."""
        return await asyncio.to_thread(self.store.closed_since, self.clock() - LOOK_BACK)

    async def report(self, tunnels: list[LiveTunnel] | None = None) -> None:
        """Write the byte counts that moved since the last report, of *tunnels* (default:
        all of this instance's)."""
        if tunnels is None:
            tunnels = list(self.tunnels.values())
        rows, now = [], self.clock()
        for t in tunnels:
            counts = t.counts()
            if counts != t.reported:
                t.reported = counts
                rows.append(TunnelRow(t.tunnel_id, t.console_id, self.instance,
                                      t.client.address,
                                      (t.client.user_agent or "")[:512] or None,
                                      t.started_at, counts[0], counts[1], now))
        if rows:
            try:
                await asyncio.to_thread(self.store.report_tunnels, rows)
            except Exception as e:
                log.warning("reporting %d live tunnel(s) failed: %s", len(rows), e)

    def tunnel_view(self, row: TunnelRow | None) -> dict[str, Any] | None:
        """A console_tunnel row for the sessions list; this instance's own are live."""
        if row is None:
            return None
        out, in_, seen = row.bytes_out, row.bytes_in, row.seen_at
        local = self.tunnels.get(row.tunnel_id)
        if local is not None:
            (out, in_), seen = local.counts(), self.clock()
        return {"id": row.tunnel_id, "instance": row.instance,
                "client_address": row.client_address, "user_agent": row.user_agent,
                "since": iso(row.started_at), "bytes_to_browser": out,
                "bytes_from_browser": in_, "counted_at": iso(seen)}


def iso(ts: float | None) -> str | None:
    """UNIX seconds as the API shows times: ISO 8601, UTC, whole seconds."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")
