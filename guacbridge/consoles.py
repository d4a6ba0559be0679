"""The core: open, inspect, extend and close consoles; start and end their sessions.

The HTTP API and the broker both call :class:`Consoles` and nothing below it, so a console
opened either way follows the same rules. A failure the caller should see is a
:class:`ConsoleError` with an HTTP status and a ``details`` text that never holds a secret.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import grants, limits, logs
from .agents import Agent, AgentError
from .audit import REPORT_EVERY, WATCH_EVERY, Audit, Client, LiveTunnel
from .audit import iso as _iso
from .config import Settings
from .errors import StatusError
from .grants import Grant, GrantStore, Refused, Target
from .guacd_pool import GuacdPool
from .keyring import SecretsError
from .metrics import Metrics
from .recordings import PATH_PARAM, Recordings
from .store.guacamole_db import GuacamoleDb, SinkRefused, client_url
from .store.sql import StoreUnavailable

log = logging.getLogger(__name__)

_REQUEST_FIELDS = {"target", "user", "sink", "extra_token", "ttl", "max_duration", "name",
                   "recording"}
TAKEN_OVER = "the console was opened again from this page"
RECHECK = 10.0   # seconds between re-reads of all live consoles (extensions, removals)
PROVISIONING_STALE = 60.0   # seconds: a guacamole-sink console still provisioning has crashed
Stopper = Callable[[str], None]


class ConsoleError(StatusError):
    """What the API answers, the broker dead-letters, the tunnel reports."""


class Consoles:
    def __init__(self, settings: Settings, store: GrantStore, agents: Mapping[str, Agent],
                 clock: Callable[[], float] = time.time,
                 guacamole: GuacamoleDb | None = None) -> None:
        self.settings = settings
        self.store = store
        self.guacamole = guacamole
        self.agents = dict(agents)
        self.clock = clock
        self._live: dict[str, set[Stopper]] = {}
        self._held: dict[str, tuple[str, Stopper]] = {}  # tunnel id → (console id, stop)
        self._deadlines: dict[str, float] = {}        # of the live consoles, as last read
        self._watcher: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.audit = Audit(store, settings.instance_name, clock)
        self.recordings = Recordings(settings)
        self.metrics = Metrics()
        self.metrics.live.set_function(lambda: sum(map(len, self._live.values())))
        self.add_listener(self.metrics.on_event)
        self.guacd_pool = GuacdPool(settings.guacd)       # the tunnels' way to guacd
        self.metrics.watch_guacd_pool(self.guacd_pool)
        self.caps = limits.ConsoleCaps(settings.limits_consoles_per_owner,
                                       settings.limits_consoles_per_target, clock)
        self.add_listener(self.caps.on_event)
        # Readiness checks by name: async callables returning None when fine, else why not.
        self.readiness: dict[str, Callable[[], Awaitable[str | None]]] = {}

    # -- requests -----------------------------------------------------------------------

    async def open(self, request: Any, owner: str,
                   console_id: str | None = None) -> dict[str, Any]:
        """Validate a console request, resolve its target, issue a grant; the reply body.
        With *console_id* (the broker's, derived from a job id) a repeat finds the console
        made the first time: a fresh token replaces one never used."""
        if console_id is not None:
            existing = await self._store(self.store.get, console_id)
            if existing is not None:
                return await self._again(existing)
        if not isinstance(request, Mapping):
            raise ConsoleError(400, "the request body must be a JSON object")
        unknown = sorted(set(request) - _REQUEST_FIELDS)
        if unknown:
            raise ConsoleError(400, f"unknown field(s): {', '.join(unknown)}")
        target = request.get("target")
        if not isinstance(target, Mapping):
            raise ConsoleError(400, "target is required: an object with agent, protocol, hostname…")
        sink = request.get("sink") or "direct"
        sinks = ("direct", "guacamole") if self.guacamole else ("direct",)
        if sink not in sinks:
            raise ConsoleError(400 if sink != "guacamole" else 501,
                               f"sink {sink!r} is not available; use one of: {', '.join(sinks)}")
        user = _optional_text(request, "user", 128)
        extra = _optional_text(request, "extra_token", 256)
        ttl = _seconds(request, "ttl", self.settings.use_by, 3600)
        duration = _seconds(request, "max_duration", self.settings.duration,
                            self.settings.max_duration)
        name = _optional_text(request, "name", 100)
        if sink == "guacamole" and user is None:
            raise ConsoleError(400, "the guacamole sink needs user: the Guacamole user's name")
        try:
            record, record_keys = self.recordings.wanted(request.get("recording"))
        except ValueError as e:
            raise ConsoleError(400, str(e)) from None

        agent_name = target.get("agent", "static")
        agent = self.agents.get(agent_name) if isinstance(agent_name, str) else None
        if agent is None:
            raise ConsoleError(400, f"unknown agent {agent_name!r}; available: "
                                    f"{', '.join(sorted(self.agents))}")
        started = time.monotonic()
        try:
            resolved = await agent.resolve(target)
        except AgentError as e:
            raise ConsoleError(e.status, e.details) from None
        finally:
            self.metrics.agent.labels(agent.name).observe(time.monotonic() - started)

        now = self.clock()
        use_by = now + ttl
        if resolved.expires_at is not None:
            use_by = min(use_by, resolved.expires_at)
        token = grants.new_token()
        console_id = console_id or grants.new_id()
        target = resolved.target
        if record:    # guacbridge's own parameters: a request can never name a path
            target = Target(target.protocol, {**target.params,
                                              **self.recordings.params(console_id, record_keys)})
        grant = Grant(id=console_id, target=target, owner=owner,
                      user=user, created_at=now, use_by=use_by, duration=duration,
                      max_duration=self.settings.max_duration, has_extra=extra is not None)
        logs.console_id.set(grant.id)
        if sink == "guacamole":   # no token to use: the session starts now, in Guacamole
            grant = dataclasses.replace(grant, consumed_at=now, deadline=now + duration,
                                        sink="guacamole", sink_state="provisioning")
        params = grant.target.params
        try:
            self.caps.admit(grant.id, owner, f"{params.get('hostname')}:{params.get('port')}",
                            use_by + grant.max_duration)
        except limits.Limited as e:
            raise ConsoleError(429, e.details) from None
        try:
            try:
                await self._store(self.store.issue, grant, grants.hash_token(token),
                                  grants.hash_token(extra) if extra is not None else None)
            except grants.Duplicate:      # the same job, racing itself
                self.caps.release(grant.id)
                return await self._again(await self._grant(grant.id))
            if sink == "guacamole":
                grant = await self._provision(grant, name or f"{params['hostname']} console")
        except BaseException:
            self.caps.release(grant.id)
            raise
        self._emit("opened", grant)
        await self.record_event(grant.id, "created", owner=owner, user=user, sink=sink,
                                protocol=grant.target.protocol,
                                hostname=grant.target.params.get("hostname"))
        if record:
            await self.record_event(grant.id, "recording.requested", include_keys=record_keys)
        if sink == "guacamole":
            log.info("console %s opened in Guacamole for %s (%s, owner %s)", grant.id, user,
                     grant.target.protocol, owner)
            return self.reply(grant)
        log.info("console %s opened for %s (%s, owner %s)", grant.id, user or "-",
                 grant.target.protocol, owner)
        return self.reply(grant, token=token, extra=extra)

    async def _again(self, grant: Grant) -> dict[str, Any]:
        """The reply for a console asked for a second time."""
        token = grants.new_token()
        if grant.sink == "direct" and await self._store(self.store.rotate_token, grant.id,
                                                        grants.hash_token(token)):
            return self.reply(grant, token=token, extra=None)
        return self.reply(grant)

    async def record_event(self, console_id: str, kind: str, **data: Any) -> None:
        """Add to the console's audit trail (``GET /api/v1/consoles/{id}/events``): a kind and
        plain facts, never a token or password (such keys raise ValueError). The features'
        own kinds (``recording.*``, ``share.*``) also go to the listeners, so that the broker
        publishes them; the lifecycle ones reach the listeners through ``_emit``."""
        await self.audit.record(console_id, kind, **data)
        if "." not in kind:
            return
        log.info("console %s: %s %s", console_id, kind,
                 " ".join(f"{k}={v}" for k, v in data.items()))
        body = {"id": console_id, "event": kind, "at": _iso(self.clock()), **data}
        for listener in self._listeners:
            try:
                listener(kind, body)
            except Exception:
                log.exception("console event listener failed")

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Called with ("opened" | "extended" | "closed", a reply body without secrets)."""
        self._listeners.append(listener)

    def _emit(self, event: str, grant: Grant) -> None:
        if not self._listeners:
            return
        body = self.reply(grant)
        for listener in self._listeners:
            try:
                listener(event, body)
            except Exception:
                log.exception("console event listener failed")

    async def _provision(self, grant: Grant, name: str) -> Grant:
        """Write the Guacamole connection; on any failure nothing stays behind."""
        assert self.guacamole is not None and grant.user is not None
        try:
            connection_id = await asyncio.to_thread(
                self.guacamole.create_connection, grant.id, name, grant.target.protocol,
                grant.target.params, grant.user)
        except BaseException as e:
            # The connection's transaction rolled back: forget the grant too, so that
            # nothing is left and a retried job can make the console afresh.
            await self._store(self.store.delete, grant.id)
            if isinstance(e, SinkRefused):
                raise ConsoleError(e.status, e.details) from None
            if isinstance(e, StoreUnavailable):
                raise ConsoleError(503, f"Guacamole's database is unavailable: {e}") from None
            log.exception("console %s: writing the Guacamole connection failed", grant.id)
            raise ConsoleError(502, "writing the connection into Guacamole's database failed;"
                                    " see the server log") from None
        await self._store(self.store.set_sink, grant.id, str(connection_id), "ready")
        return dataclasses.replace(grant, sink_ref=str(connection_id), sink_state="ready")

    async def _store(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call off the event loop; a database that is down is a 503, not a crash,
        and secrets that no configured key opens are a 500 saying which key."""
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except StoreUnavailable as e:
            raise ConsoleError(503, str(e)) from None
        except SecretsError as e:
            log.error("%s", e)
            raise ConsoleError(500, str(e)) from None

    async def get(self, console_id: str) -> dict[str, Any]:
        return self.reply(await self._grant(console_id))

    async def extend(self, console_id: str, seconds: Any) -> dict[str, Any]:
        """Push the session end back by *seconds*, never past the hard cap."""
        logs.console_id.set(console_id)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise ConsoleError(400, "seconds must be a positive whole number")
        grant = await self._grant(console_id)
        now = self.clock()
        state = grant.state(now)
        if state in ("closed", "expired"):
            raise ConsoleError(409, f"console {console_id} has {state}; open a new one")
        if grant.consumed_at is None:
            updated = await self._store(
                self.store.set_deadline, console_id,
                duration=min(grant.duration + seconds, grant.max_duration))
        else:
            deadline = min(max(grant.deadline or now, now) + seconds, grant.hard_deadline)
            updated = await self._store(self.store.set_deadline, console_id,
                                              deadline=deadline)
        log.info("console %s extended by %d s", console_id, seconds)
        self._emit("extended", updated or grant)
        await self.record_event(console_id, "extended", seconds=seconds,
                                deadline=_iso((updated or grant).deadline))
        return self.reply(updated or grant)

    async def close(self, console_id: str, reason: str = "closed by API") -> dict[str, Any]:
        logs.console_id.set(console_id)
        await self._grant(console_id)
        now = self.clock()
        grant = await self._store(self.store.close, console_id, reason, now)
        self._stop_live(console_id, reason)
        log.info("console %s closed: %s", console_id, reason)
        if grant.closed_at == now:      # this call closed it, not an earlier one
            self._emit("closed", grant)
            await self.record_event(console_id, "closed", reason=reason)
        if grant.sink == "guacamole":
            await self.clean_sinks()
            grant = await self._store(self.store.get, console_id)
        return self.reply(grant)

    async def clean_sinks(self) -> None:
        """Remove the Guacamole connections of closed consoles, and of consoles whose
        provisioning never finished. Idempotent, so several instances may run it at once."""
        if self.guacamole is None:
            return
        now = self.clock()
        for grant in await self._store(self.store.sinks_to_clean, now, PROVISIONING_STALE):
            if grant.closed_at is None:
                await self._store(self.store.close, grant.id, "provisioning did not finish", now)
            await self._store(self.guacamole.remove_connection, grant.id)
            await self._store(self.store.set_sink, grant.id, None, "removed")
            log.info("console %s: its Guacamole connection was removed", grant.id)

    # -- sessions (the tunnel) -----------------------------------------------------------

    async def start_session(self, token: str, extra: str | None, tunnel_id: str,
                            client: Client | None = None) -> Grant:
        """A tunnel consumes a one-time token; Refused says why not, in words fit for the
        browser. Such a console has no reconnect secret: it ends with its tunnel."""
        if not token:
            raise Refused("no console token was given")
        try:
            grant = await self._store(
                self.store.consume, grants.hash_token(token),
                grants.hash_token(extra) if extra else None, self.clock(),
                tunnel_id=tunnel_id)
        except Refused as e:
            await self._refused(e, "tunnel", client)
            raise
        self.audit.record_soon(grant.id, "consumed", by="tunnel", tunnel_id=tunnel_id,
                               **(client or Client()).fields())
        return grant

    async def open_page_session(self, console_id: str, token: Any, extra: Any,
                                client: Client | None = None) -> tuple[Grant, str]:
        """The console page trades the one-time token for a reconnect secret, which lets its
        tunnels come back after a network drop while the console lives."""
        if not isinstance(token, str) or not token:
            raise ConsoleError(400, "token is required")
        if extra is not None and not isinstance(extra, str):
            raise ConsoleError(400, "extra must be a string")
        secret = grants.new_token()
        try:
            grant = await self._store(
                self.store.consume, grants.hash_token(token),
                grants.hash_token(extra) if extra else None, self.clock(),
                session_hash=grants.hash_token(secret))
        except Refused as e:
            await self._refused(e, "page", client)
            raise ConsoleError(403, e.reason) from None
        if grant.id != console_id:    # a token for another console: burn it, say nothing more
            await self._store(self.store.close, grant.id, "token used on the wrong page",
                                    self.clock())
            raise ConsoleError(403, "this token does not belong to this console")
        log.info("console %s: page session started", grant.id)
        await self.record_event(grant.id, "consumed", by="page",
                                **(client or Client()).fields())
        return grant, secret

    async def _refused(self, refusal: Refused, by: str, client: Client | None) -> None:
        """A known console's token was refused (used again, expired…): who tried, from where."""
        if refusal.console_id is not None:
            await self.record_event(refusal.console_id, "refused", by=by,
                                    reason=refusal.reason, **(client or Client()).fields())

    async def resume_session(self, console_id: str, secret: str, tunnel_id: str) -> Grant:
        """A tunnel takes the console over with the page's reconnect secret."""
        grant = await self._store(self.store.resume, console_id,
                                        grants.hash_token(secret), tunnel_id, self.clock(),
                                        self.settings.reconnect_window)
        self._stop_live(console_id, TAKEN_OVER)
        return grant

    async def page_grant(self, console_id: str, secret: str) -> Grant:
        """The grant a page's reconnect secret speaks for; 403 if none."""
        grant = await self._store(self.store.by_session, console_id,
                                        grants.hash_token(secret)) if secret else None
        if grant is None:
            raise ConsoleError(403, "this page's console session is not valid")
        return grant

    async def end_tunnel(self, grant: Grant, tunnel_id: str, reason: str, *,
                         bytes_out: int = 0, bytes_in: int = 0,
                         seconds: float | None = None) -> None:
        """A tunnel closed: a page console waits for a reconnect; any other one ends."""
        await self.audit.tunnel_ended(grant.id, tunnel_id, reason, bytes_out, bytes_in,
                                      seconds)
        if grant.has_session:
            await self._store(self.store.tunnel_ended, grant.id, tunnel_id, self.clock())
            log.info("console %s: tunnel ended (%s); reconnect possible for %d s", grant.id,
                     reason, self.settings.reconnect_window)
        else:
            await self.end_session(grant.id, reason)

    def attach(self, console_id: str, stop: Stopper,
               tunnel: LiveTunnel | None = None,
               deadline: float | None = None) -> Callable[[], None]:
        """Register a live tunnel so that close() on any instance, the sweeper, a reconnect
        and its console's deadline (*deadline*, as the tunnel's grant had it; extensions
        count) can end it; with *tunnel*, it is listed in sessions and audited."""
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
                self._watcher = asyncio.get_running_loop().create_task(self._watch_live())

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

    async def _watch_live(self) -> None:
        """One task for all live tunnels (not one each, which cost memory and store reads
        per tunnel), with three jobs, each one query whatever the number of tunnels:

        - every WATCH_EVERY seconds, end the tunnels of consoles closed lately by any
          instance: a DELETE answered elsewhere ends the tunnel here at once;
        - every RECHECK seconds and at the earliest deadline, re-read all live consoles:
          extensions, deadlines, consoles removed;
        - every REPORT_EVERY seconds, report the tunnels' byte counts for the sessions list.
        """
        jobs = {self._end_closed_elsewhere: WATCH_EVERY, self._check_live: RECHECK,
                self.audit.report: REPORT_EVERY}
        last = dict.fromkeys(jobs, -math.inf)
        last[self.audit.report] = time.monotonic()      # a new tunnel reports itself
        self._wakeup = wakeup = asyncio.Event()
        try:
            while self._live:
                wakeup.clear()
                tick = time.monotonic()
                due = [job for job, every in jobs.items() if tick - last[job] >= every]
                if self._check_live not in due and \
                        any(d <= self.clock() for d in self._deadlines.values()):
                    due.append(self._check_live)
                failed = False
                for job in due:
                    last[job] = tick
                    try:
                        await job()
                    except Exception as e:   # the store is down, say: retried, not in a spin
                        failed = True
                        log.warning("watching the live consoles: %s failed: %s",
                                    job.__name__.strip("_"), e)
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
        for console_id, reason in await self.audit.closed_lately():
            if console_id in self._live:
                self._stop_live(console_id, reason or "closed")

    async def _check_live(self) -> None:
        ids, held = list(self._live), dict(self._held)   # as they were when the store was read
        ends = await self._store(self.store.session_ends, ids)
        now = self.clock()
        # A page that came back through another instance holds its console now: the tunnel
        # here that held it before ends (its browser is gone, by a path not noticed yet).
        for tunnel_id, (console_id, stop) in held.items():
            holder = ends.get(console_id, (None,) * 4)[3]
            if holder is not None and holder != tunnel_id and tunnel_id in self._held:
                stop(TAKEN_OVER)
        for console_id in ids:
            if console_id not in self._live:
                continue
            end = ends.get(console_id)
            deadline, closed_at, reason, _ = end if end is not None else (None,) * 4
            if end is None:
                why = "console removed"
            elif closed_at is not None:
                why = reason or "closed"
            elif deadline is None or now >= deadline:
                why = "time limit reached"
            else:
                self._deadlines[console_id] = deadline
                continue
            self._deadlines.pop(console_id, None)
            for stop in self._live.pop(console_id, ()):     # stopped once, not at each look
                stop(why)

    async def end_session(self, console_id: str, reason: str) -> None:
        now = self.clock()
        grant = await self._store(self.store.close, console_id, reason, now)
        if grant is not None and grant.closed_at == now:
            log.info("console %s ended: %s", console_id, reason)
            self._emit("closed", grant)
            await self.record_event(console_id, "closed", reason=reason)

    async def console_up(self, console_id: str) -> None:
        """The tunnel saw the first frame without an error."""
        await self._store(self.store.mark_up, console_id, self.clock())
        log.info("console %s is up", console_id)

    async def current(self, console_id: str) -> Grant | None:
        return await self._store(self.store.get, console_id)

    async def sweep(self) -> None:
        """One pass: close expired grants and the tunnels still open on them, and remove
        the Guacamole connections of ended consoles."""
        for console_id, reason in await self._store(
                self.store.expire, self.clock(), self.settings.reconnect_window):
            self._stop_live(console_id, reason)
            log.info("console %s closed: %s", console_id, reason)
            if self._listeners:
                self._emit("closed", await self._grant(console_id))
            await self.record_event(console_id, "closed", reason=reason)
        await self.clean_sinks()
        await self.remove_old_recordings()

    async def sweep_forever(self, interval: float = 5.0, purge_every: int = 60) -> None:
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
        purged = await self._store(self.store.purge,
                                   self.clock() - self.settings.audit_retention)
        if purged:
            log.info("purged %d console(s) closed over %d s ago, with their events", purged,
                     self.settings.audit_retention)
        return purged

    async def events(self, console_id: str) -> dict[str, Any]:
        """The console's audit trail, oldest first."""
        await self._grant(console_id)
        try:
            events = await self.audit.events(console_id)
        except StoreUnavailable as e:
            raise ConsoleError(503, str(e)) from None
        return {"result": True, "details": None, "id": console_id, "events": events}

    async def sessions(self, owner: str | None = None) -> dict[str, Any]:
        """The consoles in use now (connecting or active), with their tunnel: where it
        lives, who is at the other end, bytes so far. Only *owner*'s, when given."""
        await self.audit.settle()
        now = self.clock()
        listed = []
        for grant, tunnel in await self._store(self.store.sessions):
            state = grant.state(now)
            if state not in ("connecting", "active") or owner not in (None, grant.owner):
                continue
            listed.append({
                "id": grant.id, "state": state, "sink": grant.sink, "owner": grant.owner,
                "user": grant.user, "target": grant.target.public(),
                "started_at": _iso(grant.consumed_at), "up_at": _iso(grant.up_at),
                "deadline": _iso(grant.deadline), "max_deadline": _iso(grant.hard_deadline),
                "reconnecting": grant.has_session and grant.live_tunnel is None,
                "tunnel": self.audit.tunnel_view(tunnel)})
        return {"result": True, "details": None, "instance": self.audit.instance,
                "sessions": listed}

    async def remove_old_recordings(self) -> None:
        """Delete recordings kept longer than the retention; each removal is an event."""
        if not self.recordings.enabled:
            return
        for console_id, name in await asyncio.to_thread(self.recordings.remove_expired):
            await self.record_event(console_id, "recording.removed", file=name,
                                    reason=f"older than the retention of"
                                           f" {self.recordings.retention} s")

    def stop_all(self, reason: str) -> None:
        for console_id in list(self._live):
            self._stop_live(console_id, reason)

    def live_count(self, console_id: str) -> int:
        return len(self._live.get(console_id, ()))

    # -- replies ------------------------------------------------------------------------

    def reply(self, grant: Grant, token: str | None = None,
              extra: str | None = None) -> dict[str, Any]:
        """The CloudStack-style body shared by the API and the broker."""
        base = self.settings.base_url
        body: dict[str, Any] = {
            "result": True, "details": None, "id": grant.id,
            "state": grant.state(self.clock()), "sink": grant.sink,
            "url": f"{base}/console/{grant.id}",
            "expires_at": _iso(grant.deadline if grant.consumed_at else grant.use_by),
            "target": grant.target.public(), "owner": grant.owner, "user": grant.user,
            "created_at": _iso(grant.created_at), "use_by": _iso(grant.use_by),
            "started_at": _iso(grant.consumed_at), "deadline": _iso(grant.deadline),
            "max_deadline": _iso(grant.hard_deadline), "up_at": _iso(grant.up_at),
            "closed_at": _iso(grant.closed_at),
            "close_reason": grant.close_reason, "live_tunnels": self.live_count(grant.id),
            "recording": PATH_PARAM in grant.target.params,
        }
        if grant.sink == "guacamole":
            body["url"] = client_url(self.settings.guacamole_url, int(grant.sink_ref)) \
                if grant.sink_ref else None
            body["guacamole"] = {"connection_id": grant.sink_ref, "state": grant.sink_state}
        elif token is not None:
            split = urlsplit(base)
            secure = split.scheme == "https"
            body["url"] += f"#token={token}"
            body["websocket"] = {
                "host": split.hostname, "port": split.port or (443 if secure else 80),
                "path": f"{split.path}/tunnel", "secure": secure,
                "token": token, "extra": extra,
            }
        return body

    async def _grant(self, console_id: str) -> Grant:
        grant = await self._store(self.store.get, console_id)
        if grant is None:
            raise ConsoleError(404, f"no console with id {console_id}")
        return grant

    def _stop_live(self, console_id: str, reason: str) -> None:
        for stop in list(self._live.get(console_id, ())):
            stop(reason)


def _optional_text(request: Mapping, name: str, limit: int) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ConsoleError(400, f"{name} must be a string of 1 to {limit} characters")
    return value


def _seconds(request: Mapping, name: str, default: int, limit: int) -> int:
    value = request.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ConsoleError(400, f"{name} must be a whole number of seconds from 1 to {limit}")
    return value
