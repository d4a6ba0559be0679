"""Several guacd backends: which are up, how many tunnels each carries, which to use next.

``GUACBRIDGE_GUACD=a:4822,b:4822`` names the pool. A new tunnel goes to the healthy guacd
with the fewest live tunnels (ties taken in turn); one that refuses, does not answer or
hangs up before ``args`` is marked down at once and the next one is tried. A probe every few
seconds marks backends down and up again. Backends marked down are still tried, last: the
health view may be stale, and a refused connect costs little.

Only failures of guacd itself move on (:class:`~guacbridge.guacd.GuacdUnavailable`); an
error about the target (a wrong password, an unreachable VNC server) would be the same
through any guacd and goes to the caller.

The probe sends ``nop`` where guacd expects ``select``: a healthy guacd reads it, refuses it
and hangs up at once. That proves its accept loop and parser work, forks no process, and
logs only at guacd's debug level. A guacd that accepts but does not hang up in time is down.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import guacd
from .guacd import Capabilities, GuacdConnection, GuacdUnavailable

log = logging.getLogger(__name__)

PROBE = guacd.encode("nop").encode()
FRESH = 1.0     # seconds a probe's result stands for /readyz


@dataclasses.dataclass
class Backend:
    address: tuple[str, int]
    up: bool = True                  # optimistic until a probe or a connect says otherwise
    reason: str = ""                 # why it is down
    live: int = 0                    # tunnels through it now, handshakes in progress included
    refusals: int = 0                # connects that found it unavailable
    checked_at: float | None = None  # last probe (monotonic)

    @property
    def name(self) -> str:
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GuacdPool:
    def __init__(self, addresses: Sequence[tuple[str, int]], probe_interval: float = 5.0,
                 probe_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not addresses:
            raise ValueError("a guacd pool needs at least one address")
        self.backends = [Backend((host, port)) for host, port in addresses]
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.clock = clock
        self._turn = 0                                    # round-robin start among equals
        self._leases: dict[int, tuple[Backend, GuacdConnection]] = {}
        self._task: asyncio.Task | None = None
        self._probes: set[asyncio.Task] = set()

    # -- choosing and connecting ---------------------------------------------------------

    def order(self) -> list[Backend]:
        """The order to try: healthy before down, fewer live tunnels first, ties in turn."""
        n = len(self.backends)
        turn = self._turn
        self._turn = (turn + 1) % n
        ranked = sorted(enumerate(self.backends),
                        key=lambda ib: (not ib[1].up, ib[1].live, (ib[0] - turn) % n))
        return [backend for _, backend in ranked]

    async def connect(self, protocol: str, params: Mapping[str, str], caps: Capabilities,
                      timeout: float = 15.0) -> GuacdConnection:
        """A new connection (of *protocol*: vnc, rdp, ssh…) through the best guacd, failing
        over while guacd itself fails. Give it back with :meth:`release`."""
        last: GuacdUnavailable | None = None
        for backend in self.order():
            backend.live += 1               # counts now, so concurrent opens spread out
            try:
                conn = await guacd.connect(backend.address, protocol, params, caps, timeout)
            except GuacdUnavailable as e:
                backend.live -= 1
                backend.refusals += 1
                self._mark(backend, False, e.message)
                last = e
                continue
            except BaseException:
                backend.live -= 1
                raise
            self._mark(backend, True)
            self._leases[id(conn)] = (backend, conn)
            return conn
        assert last is not None
        if len(self.backends) > 1:
            raise GuacdUnavailable(last.status, f"no guacd of {len(self.backends)} could serve:"
                                                f" {last.message}")
        raise last

    async def join(self, address: tuple[str, int], connection_id: str,
                   params: Mapping[str, str], caps: Capabilities,
                   timeout: float = 15.0) -> GuacdConnection:
        """Join the connection *connection_id* that the guacd at *address* holds (a viewer
        of a shared console): there is no choosing, only that guacd has it. Counted against
        that guacd until :meth:`release`; one outside this pool (another instance's list
        may differ) is joined all the same."""
        backend = next((b for b in self.backends if b.address == tuple(address)), None)
        if backend is not None:
            backend.live += 1
        try:
            conn = await guacd.connect(address, connection_id, params, caps, timeout)
        except BaseException:
            if backend is not None:
                backend.live -= 1
            raise
        if backend is not None:
            self._leases[id(conn)] = (backend, conn)
        return conn

    def release(self, conn: GuacdConnection, lost: bool = False) -> None:
        """Close *conn* and count it out; *lost* (guacd dropped it) probes that guacd now."""
        conn.close()
        lease = self._leases.pop(id(conn), None)
        if lease is None:
            return
        backend = lease[0]
        backend.live -= 1
        if lost:
            with contextlib.suppress(RuntimeError):          # no running loop: no probe
                task = asyncio.get_running_loop().create_task(self.probe(backend))
                self._probes.add(task)                       # held until done, not collected
                task.add_done_callback(self._probes.discard)

    # -- health --------------------------------------------------------------------------

    def _mark(self, backend: Backend, up: bool, reason: str = "") -> None:
        if up and not backend.up:
            log.info("guacd %s is up again", backend.name)
        elif not up and backend.up:
            log.warning("guacd %s is down: %s", backend.name, reason)
        backend.up, backend.reason = up, "" if up else reason

    async def probe(self, backend: Backend) -> bool:
        """One look at *backend*; marks it and says whether it is up."""
        host, port = backend.address
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    self.probe_timeout)
            writer.write(PROBE)
            await asyncio.wait_for(reader.read(4096), self.probe_timeout)
            reason = ""
        except TimeoutError:
            reason = "guacd did not answer a probe in time"
        except OSError as e:
            reason = f"guacd is not reachable ({e.strerror or e})"
        finally:
            if writer is not None:
                writer.close()
        backend.checked_at = self.clock()
        self._mark(backend, not reason, reason)
        return not reason

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(b) for b in self.backends))

    async def _probe_forever(self) -> None:
        while True:
            try:
                await self.probe_all()
            except Exception:
                log.exception("guacd probe failed; retrying")
            await asyncio.sleep(self.probe_interval)

    def start(self) -> None:
        """Probe every ``probe_interval`` seconds from now on (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._probe_forever())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def check(self) -> str | None:
        """For /readyz: None while some guacd is up, else why none is. Probes first, so the
        answer is current, unless a probe ran in the last second (readyz is unauthenticated:
        a flood of requests must not become a flood of connections to guacd)."""
        now = self.clock()
        if any(b.checked_at is None or now - b.checked_at > FRESH for b in self.backends):
            await self.probe_all()
        if any(b.up for b in self.backends):
            return None
        return "no guacd is up: " + "; ".join(f"{b.name}: {b.reason}" for b in self.backends)

    def status(self) -> list[dict[str, Any]]:
        """Each backend as /readyz shows it."""
        return [{"address": b.name, "up": b.up, "live_tunnels": b.live,
                 **({} if b.up else {"reason": b.reason})} for b in self.backends]
