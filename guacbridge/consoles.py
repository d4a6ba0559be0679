"""The core: opening, inspecting, extending and closing consoles — here and nowhere else.

The HTTP API, the broker and the legacy route all call :class:`Consoles`, so a console opened
any way follows the same rules. A failure the caller should see is a :class:`ConsoleError`
with an HTTP status and a ``details`` text that never holds a secret. What happens around a
console lives beside it: its sessions (``sessions.py``), its live tunnels (``live.py``), the
expiry sweep (``sweeper.py``), the guacamole sink (``guacamole_sink.py``); ``service.py``
assembles them.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import console_request, grants, limits, logs, parameters
from .agents import Agent, AgentError, Resolved, follows, power_actions, resolve_within
from .audit import iso
from .config import Settings
from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant, GrantStore, Target
from .guacamole_sink import GuacamoleSink
from .live import LiveTunnels
from .metrics import Metrics
from .policy import Policy
from .power import WAITING, Power
from .recordings import PATH_PARAM, Recordings
from .store import call
from .store.guacamole_db import client_url
from .store.sql import StoreUnavailable

__all__ = ["ConsoleError", "Consoles"]
log = logging.getLogger(__name__)


class Consoles:
    def __init__(self, settings: Settings, store: GrantStore, agents: Mapping[str, Agent], *,
                 events: ConsoleEvents, live: LiveTunnels, caps: limits.ConsoleCaps,
                 recordings: Recordings, metrics: Metrics, policy: Policy, power: Power,
                 sink: GuacamoleSink | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.agents = dict(agents)
        self.events = events
        self.live = live
        self.caps = caps
        self.recordings = recordings
        self.metrics = metrics
        self.policy = policy
        self.power = power      # a server that is off, asked for with the power right
        self.sink = sink
        self.clock = clock

    async def open(self, body: Any, owner: str,
                   console_id: str | None = None) -> dict[str, Any]:
        """Check a console request, resolve its target, issue a grant; the reply body.
        With *console_id* (the broker's, derived from a job id) a repeat finds the console
        made the first time: a fresh token replaces one never used, for *owner* alone."""
        if console_id is not None:
            existing = await call(self.store.get, console_id)
            if existing is not None:
                return await self._again(existing, owner)
        settings = self.settings
        request = console_request.parse(
            body, use_by=settings.use_by, duration=settings.duration,
            max_duration=settings.max_duration,
            sinks=("direct", "guacamole") if self.sink else ("direct",),
            recording=self.recordings.wanted)
        agent = self.agents.get(request.agent) if isinstance(request.agent, str) else None
        if agent is None:
            raise ConsoleError(400, f"unknown agent {request.agent!r}; available: "
                                    f"{', '.join(sorted(self.agents))}")
        if request.power and not power_actions(agent, request.target):
            raise ConsoleError(400, f"power: agent {agent.name} has no power control for this"
                                    " target")
        started = time.monotonic()
        resolved: Resolved | None = None
        try:
            resolved = await resolve_within(agent, request.target,
                                            settings.limits_agent_timeout)
        except AgentError as e:
            # A server that is off, asked for with the power right: the console opens and
            # waits for it (its page offers Start); where it is comes once it is on.
            if not await self.power.waits_for_start(agent, request, e):
                raise ConsoleError(e.status, e.details) from None
        finally:
            self.metrics.agent.labels(agent.name).observe(time.monotonic() - started)
        now = self.clock()
        use_by = now + request.ttl
        token, extra = grants.new_token(), request.extra_token
        console_id = console_id or grants.new_id()
        key, target = "", WAITING
        # A following agent is asked again at every connect (targets.py): its answer's
        # expiry (an oVirt ticket's) no longer bounds the link, each connection gets its own.
        # Guacamole's sink connects on its own, with what is written now.
        follow = follows(agent) and request.sink == "direct"
        if resolved is not None:
            # Where the agent says to go is judged as addresses before anything is issued.
            judged = await self.policy.judge(owner, agent.name, resolved.target.protocol,
                                             resolved.target.params)
            if resolved.expires_at is not None and not follow:
                use_by = min(use_by, resolved.expires_at)
            key, target = judged.key, Target(resolved.target.protocol, judged.params)
        if not request.prompt and request.sink == "direct":   # the tunnel reads it
            target = Target(target.protocol, {**target.params, parameters.NO_PROMPT: "true"})
        if request.record:    # guacbridge's own parameters: a request can never name a path
            target = Target(target.protocol, {**target.params, **self.recordings.params(
                console_id, request.record_keys)})
        grant = Grant(id=console_id, target=target, owner=owner, user=request.user,
                      created_at=now, use_by=use_by, duration=request.duration,
                      max_duration=settings.max_duration, has_extra=extra is not None,
                      power=request.power, follows=follow)
        logs.console_id.set(grant.id)
        guacamole = request.sink == "guacamole"
        if guacamole and target.protocol == "serial":
            raise ConsoleError(400, "a serial console needs guacbridge's bridge at every"
                                    " connect: use the direct sink")
        if guacamole:   # no token to use: the session starts now, in Guacamole
            grant = dataclasses.replace(grant, consumed_at=now, deadline=now + grant.duration,
                                        sink="guacamole", sink_state="provisioning")
        params = grant.target.params
        try:
            self.caps.admit(grant.id, owner, key, use_by + grant.max_duration)
        except limits.Limited as e:
            raise ConsoleError(429, e.details) from None
        try:
            try:
                await call(self.store.issue, grant, grants.hash_token(token),
                           grants.hash_token(extra) if extra is not None else None,
                           dict(request.target) if request.power or follow else None)
            except grants.Duplicate:      # the same job, racing itself
                self.caps.release(grant.id)
                return await self._again(await self._grant(grant.id), owner)
            if guacamole:
                assert self.sink is not None
                grant = await self.sink.provision(
                    grant, request.name or f"{params['hostname']} console")
        except BaseException:
            self.caps.release(grant.id)
            raise
        self.events.emit("opened", self.reply(grant))
        await self.events.record(grant.id, "created", owner=owner, user=grant.user,
                                 sink=grant.sink, protocol=grant.target.protocol,
                                 hostname=grant.target.params.get("hostname"))
        if request.record:
            await self.events.record(grant.id, "recording.requested",
                                     include_keys=request.record_keys)
        log.info("console %s opened%s for %s (%s, owner %s)", grant.id,
                 " in Guacamole" if guacamole else "", grant.user or "-",
                 grant.target.protocol, owner)
        if guacamole:
            return self.reply(grant)
        return self.reply(grant, token=token, extra=extra)

    async def _again(self, grant: Grant, owner: str) -> dict[str, Any]:
        """The reply for a console asked for a second time: by its owner only, or another
        caller would take over its link (a fresh token voids the one sent first)."""
        if grant.owner != owner:
            raise ConsoleError(409, f"console {grant.id} belongs to another owner")
        token = grants.new_token()
        if grant.sink == "direct" and await call(self.store.rotate_token, grant.id,
                                                 grants.hash_token(token)):
            return self.reply(grant, token=token, extra=None)
        return self.reply(grant)

    # -- inspecting -----------------------------------------------------------------------

    async def get(self, console_id: str) -> dict[str, Any]:
        return self.reply(await self._grant(console_id))

    async def current(self, console_id: str) -> Grant | None:
        return await call(self.store.get, console_id)

    async def history(self, console_id: str) -> dict[str, Any]:
        """The console's audit trail, oldest first."""
        await self._grant(console_id)
        try:
            events = await self.events.audit.events(console_id)
        except StoreUnavailable as e:
            raise ConsoleError(503, str(e)) from None
        return {"result": True, "details": None, "id": console_id, "events": events}

    async def sessions(self, owner: str | None = None) -> dict[str, Any]:
        """The consoles in use now (connecting or active), with their tunnel: where it
        lives, who is at the other end, bytes so far. Only *owner*'s, when given."""
        audit = self.events.audit
        await audit.settle()
        now = self.clock()
        listed = []
        for grant, tunnel in await call(self.store.sessions):
            state = grant.state(now)
            if state not in ("connecting", "active") or owner not in (None, grant.owner):
                continue
            listed.append({
                "id": grant.id, "state": state, "sink": grant.sink, "owner": grant.owner,
                "user": grant.user, "target": grant.target.public(),
                "started_at": iso(grant.consumed_at), "up_at": iso(grant.up_at),
                "deadline": iso(grant.deadline), "max_deadline": iso(grant.hard_deadline),
                "reconnecting": grant.has_session and grant.live_tunnel is None,
                "tunnel": audit.tunnel_view(tunnel)})
        return {"result": True, "details": None, "instance": audit.instance,
                "sessions": listed}

    # -- extending and closing ------------------------------------------------------------

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
            updated = await call(self.store.set_deadline, console_id,
                                 duration=min(grant.duration + seconds, grant.max_duration))
        else:
            deadline = min(max(grant.deadline or now, now) + seconds,
                           grant.consumed_at + grant.max_duration)
            updated = await call(self.store.set_deadline, console_id, deadline=deadline)
        grant = updated or grant
        log.info("console %s extended by %d s", console_id, seconds)
        self.events.emit("extended", self.reply(grant))
        await self.events.record(console_id, "extended", seconds=seconds,
                                 deadline=iso(grant.deadline))
        return self.reply(grant)

    async def close(self, console_id: str, reason: str = "closed by API") -> dict[str, Any]:
        """Close a console that exists (404 otherwise); closing twice keeps the first
        reason."""
        logs.console_id.set(console_id)
        await self._grant(console_id)
        grant = await self.end(console_id, reason)
        assert grant is not None
        if grant.sink == "guacamole" and self.sink is not None:
            await self.sink.clean()
            grant = await self._grant(console_id)
        return self.reply(grant)

    async def end(self, console_id: str, reason: str) -> Grant | None:
        """Close the console and end its tunnels here; told once, by the call that
        closed it. None if there is no such console."""
        now = self.clock()
        grant = await call(self.store.close, console_id, reason, now)
        self.live.stop(console_id, reason)
        if grant is not None and grant.closed_at == now:
            await self.announce_closed(grant, reason)
        return grant

    async def announce_closed(self, grant: Grant, reason: str) -> None:
        """A console has just been closed (by :meth:`end`, or by the store's own expiry):
        its tunnels end, the listeners hear it, the trail says why."""
        self.live.stop(grant.id, reason)
        log.info("console %s closed: %s", grant.id, reason)
        self.events.emit("closed", self.reply(grant))
        await self.events.record(grant.id, "closed", reason=reason)

    # -- replies --------------------------------------------------------------------------

    def reply(self, grant: Grant, token: str | None = None,
              extra: str | None = None) -> dict[str, Any]:
        """The CloudStack-style body shared by the API and the broker."""
        base = self.settings.base_url
        body: dict[str, Any] = {
            "result": True, "details": None, "id": grant.id,
            "state": grant.state(self.clock()), "sink": grant.sink,
            "url": f"{base}/console/{grant.id}",
            "expires_at": iso(grant.deadline if grant.consumed_at else grant.use_by),
            "target": grant.target.public(), "owner": grant.owner, "user": grant.user,
            "created_at": iso(grant.created_at), "use_by": iso(grant.use_by),
            "started_at": iso(grant.consumed_at), "deadline": iso(grant.deadline),
            "max_deadline": iso(grant.hard_deadline), "up_at": iso(grant.up_at),
            "closed_at": iso(grant.closed_at),
            "close_reason": grant.close_reason, "live_tunnels": self.live.count(grant.id),
            "recording": PATH_PARAM in grant.target.params, "power": grant.power,
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
        grant = await call(self.store.get, console_id)
        if grant is None:
            raise ConsoleError(404, f"no console with id {console_id}")
        return grant
