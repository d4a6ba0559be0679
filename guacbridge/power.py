"""Power beside the console: a console's server switched on, off or reset through the agent
that found it, and the console that waits for its server to be switched on.

Only a console whose request said ``"power": true`` has the right; its requested target is
kept (sealed) for the agent's power calls. Every action is in the console's audit trail with
who asked. A console made while its server was off has no target yet (:data:`WAITING`): once
the agent says the server is on, :meth:`Power.locate` asks it where the console is and judges
that by the target policy like a new console.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from . import console_request, logs
from .agents import Agent, AgentError, power_actions, power_within, resolve_within, state_within
from .config import Settings
from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant, GrantStore, Target
from .metrics import Metrics
from .policy import Policy
from .store import call

log = logging.getLogger(__name__)
T = TypeVar("T")

# The target of a console opened for a server that was off: nowhere yet (no hostname); its
# agent says where once the server is on (Power.locate).
WAITING = Target("", {})


def waiting(grant: Grant) -> bool:
    """The console waits for its server to be switched on before it can connect."""
    return "hostname" not in grant.target.params


class Power:
    def __init__(self, settings: Settings, store: GrantStore, agents: Mapping[str, Agent],
                 events: ConsoleEvents, policy: Policy, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.agents = dict(agents)
        self.events = events
        self.policy = policy
        self.metrics = metrics
        self.clock = clock

    async def state(self, console_id: str) -> dict[str, Any]:
        """The target's power state as its agent sees it, and the actions it offers."""
        agent, target = await self._powered(console_id)
        state = await self._agent_call(agent, state_within(
            agent, target, self.settings.limits_agent_timeout))
        if state == "on":
            await self.locate(console_id, agent, target)
        name = target.get("vm") or target.get("server") or target.get("hostname")
        return {"result": True, "details": None, "id": console_id, "state": state,
                "actions": list(power_actions(agent, target)),
                "name": name if isinstance(name, str) else None}

    async def act(self, console_id: str, action: Any, by: str) -> dict[str, Any]:
        """Have the agent press *action* (one it offers) on the console's target; the
        audit trail says who asked, and whether the agent did it."""
        logs.console_id.set(console_id)
        agent, target = await self._powered(console_id)
        offered = power_actions(agent, target)
        if action not in offered:
            raise ConsoleError(400, f"action must be one of {', '.join(offered)}")
        try:
            await self._agent_call(agent, power_within(
                agent, target, action, self.settings.limits_agent_timeout))
        except ConsoleError as e:
            await self.events.record(console_id, "power.failed", action=action, by=by,
                                     details=e.details)
            raise
        log.info("console %s: power %s by %s", console_id, action, by)
        await self.events.record(console_id, "power", action=action, by=by)
        if action == "on":
            await self.locate(console_id, agent, target)
        return {"result": True, "details": None, "id": console_id, "action": action,
                "actions": list(offered)}

    async def waits_for_start(self, agent: Agent, request: console_request.ConsoleRequest,
                              refused: AgentError) -> bool:
        """Whether a console refused as not running (409) opens anyway, waiting for its
        server: only with the power right, an agent that can switch it on and that says it
        is off, and the direct sink (Guacamole's needs the address at once)."""
        if refused.status != 409 or not request.power or request.sink != "direct" \
                or "on" not in power_actions(agent, request.target):
            return False
        try:
            state = await state_within(agent, request.target,
                                       self.settings.limits_agent_timeout)
        except AgentError:
            return False
        return state == "off"

    async def locate(self, console_id: str, agent: Agent, target: dict[str, Any]) -> None:
        """A console that waits for its server, now on: ask its agent where the console is,
        judge it like a new one, and keep it with guacbridge's own parameters (recording,
        prompt) set at creation. Not there yet (still starting): it keeps waiting."""
        grant = await self._grant(console_id)
        if not waiting(grant):
            return
        try:
            resolved = await resolve_within(agent, target, self.settings.limits_agent_timeout)
        except AgentError as e:
            if e.status == 409:
                return
            raise ConsoleError(e.status, e.details) from None
        judged = await self.policy.judge(grant.owner, agent.name, resolved.target.protocol,
                                         resolved.target.params)
        located = Target(resolved.target.protocol, {**judged.params, **grant.target.params})
        if await call(self.store.locate, console_id, located):
            log.info("console %s: its server is on; the console is at %s", console_id,
                     located.params.get("hostname"))
            await self.events.record(console_id, "located", protocol=located.protocol,
                                     hostname=located.params.get("hostname"))

    async def _powered(self, console_id: str) -> tuple[Agent, dict[str, Any]]:
        """The agent and target of a console that has the power right and is not over;
        404 for one without the right (as if there were no such power switch)."""
        grant = await self._grant(console_id)
        target = await call(self.store.asked_target, console_id) if grant.power else None
        if target is None:
            raise ConsoleError(404, f"console {console_id} has no power control (open it"
                                    ' with "power": true)')
        state = grant.state(self.clock())
        if state in ("closed", "expired"):
            raise ConsoleError(409, f"console {console_id} has {state}; open a new one")
        name = target.get("agent", "static")
        agent = self.agents.get(name)
        if agent is None:
            raise ConsoleError(503, f"agent {name!r} is not configured here any more")
        return agent, target

    async def _agent_call(self, agent: Agent, work: Awaitable[T]) -> T:
        started = time.monotonic()
        try:
            return await work
        except AgentError as e:
            raise ConsoleError(e.status, e.details) from None
        finally:
            self.metrics.agent.labels(agent.name).observe(time.monotonic() - started)

    async def _grant(self, console_id: str) -> Grant:
        grant = await call(self.store.get, console_id)
        if grant is None:
            raise ConsoleError(404, f"no console with id {console_id}")
        return grant
