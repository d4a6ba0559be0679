"""Agents turn a console request's ``target`` into something guacd can connect to.

An agent is any object with ``name`` and ``async resolve(target) -> Resolved``. The core only
looks agents up here, by name; third-party agents register through the ``guacbridge.agents``
entry-point group (a factory taking the Settings).

The core calls agents through :func:`resolve_within`, which gives up after the configured
``limits.agent_timeout`` (a 504 naming the agent). An agent's blocking work (an SDK's HTTP
calls, a file read) belongs in :func:`run_blocking`: the agents' own worker threads, so a
hanging upstream fills those and never asyncio's default executor, where the grant store's
calls run.

Following is optional: an agent whose answer expires or can move (an oVirt console's ticket
lives two minutes, its VM migrates to another host) sets ``follows = True``; the core then
keeps the request's target and asks the agent again for every new guacd connection of the
console (``targets.py``). Without the attribute (static targets, BMCs, most plug-ins) the
answer found at creation is used for the console's whole life: :func:`follows`.

Power is optional: an agent that can press a target's power button (a fence agent: oVirt's
engine, a BMC over IPMI) also has ``power_actions(target)`` (what it offers for that target,
cheap and without I/O), ``async state(target) -> "on" | "off" | "unknown"`` and
``async power(target, action)``; :func:`power_actions`, :func:`state_within` and
:func:`power_within` call them, bounded by the same timeout as ``resolve``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, Protocol, TypeVar

from ..config import Settings
from ..errors import StatusError
from ..grants import Target

log = logging.getLogger(__name__)


class AgentError(StatusError):
    """The request cannot be resolved: 400 bad request, 404 no such machine, 409 not
    running, 502 the upstream refused."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    target: Target
    expires_at: float | None = None   # when the credentials stop working (e.g. an oVirt ticket)


class Agent(Protocol):
    name: str

    async def resolve(self, target: Mapping[str, Any]) -> Resolved: ...


def follows(agent: Agent | None) -> bool:
    """Whether *agent*'s answer expires or moves, so that each new guacd connection of its
    consoles asks it again; False for an agent (or plug-in) without a ``follows``."""
    return getattr(agent, "follows", False) is True


# The power actions an agent may offer, in the order a page shows them: ``shutdown`` asks the
# operating system (ACPI), ``off`` cuts the power, ``reboot`` asks the OS to restart,
# ``reset`` is the hard reset button, ``cycle`` is off and on again.
POWER_ACTIONS = ("on", "shutdown", "off", "reboot", "reset", "cycle")
POWER_STATES = ("on", "off", "unknown")


class PowerAgent(Agent, Protocol):
    def power_actions(self, target: Mapping[str, Any]) -> tuple[str, ...]: ...

    async def state(self, target: Mapping[str, Any]) -> str: ...

    async def power(self, target: Mapping[str, Any], action: str) -> None: ...


T = TypeVar("T")
AGENT_THREADS = 16          # blocking agent calls at once, across all agents
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def agent_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The agents' worker threads, apart from asyncio's default executor."""
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(
            AGENT_THREADS, thread_name_prefix="guacbridge-agent")
    return _executor


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in the agents' own threads; for agents' blocking calls."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(agent_executor(), functools.partial(function, *args))


async def resolve_within(agent: Agent, target: Mapping[str, Any], seconds: float) -> Resolved:
    """``agent.resolve(target)``, or a 504 naming the agent after *seconds*: a request never
    waits longer on an upstream that stopped answering. The thread an abandoned call may
    still occupy finishes on its own (the agents bound their upstream calls too)."""
    call = asyncio.ensure_future(agent.resolve(target))
    try:
        done, _ = await asyncio.wait({call}, timeout=seconds)
    except asyncio.CancelledError:
        call.cancel()
        raise
    if not done:            # not wait_for: a TimeoutError the agent raises is its own
        call.cancel()
        raise AgentError(504, f"agent {agent.name} did not answer within {seconds:g} s")
    return call.result()


def power_actions(agent: Agent, target: Mapping[str, Any]) -> tuple[str, ...]:
    """What *agent* can do to *target*'s power; () for an agent without power control."""
    offered = getattr(agent, "power_actions", None)
    if offered is None:
        return ()
    return tuple(a for a in offered(target) if a in POWER_ACTIONS)


async def state_within(agent: Agent, target: Mapping[str, Any], seconds: float) -> str:
    """The target's power state, or a 504 naming the agent after *seconds*."""
    state = await _within(agent, agent.state(target), seconds)  # type: ignore[attr-defined]
    return state if state in POWER_STATES else "unknown"


async def power_within(agent: Agent, target: Mapping[str, Any], action: str,
                       seconds: float) -> None:
    """Press *action* on the target, or a 504 naming the agent after *seconds*."""
    await _within(agent, agent.power(target, action), seconds)  # type: ignore[attr-defined]


async def _within(agent: Agent, work: Any, seconds: float) -> Any:
    call = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({call}, timeout=seconds)
    except asyncio.CancelledError:
        call.cancel()
        raise
    if not done:
        call.cancel()
        raise AgentError(504, f"agent {agent.name} did not answer within {seconds:g} s")
    return call.result()


def load_agents(settings: Settings) -> dict[str, Agent]:
    """The built-in agents plus every installed entry point of ``guacbridge.agents``."""
    from .bmc import BmcAgent
    from .static import StaticAgent
    agents: dict[str, Agent] = {"static": StaticAgent(), "bmc": BmcAgent(settings)}
    if settings.agents.get("ovirt"):
        from .ovirt import OvirtAgent
        agents["ovirt"] = OvirtAgent(settings)
    for entry in metadata.entry_points(group="guacbridge.agents"):
        if entry.name in agents:
            continue
        try:
            agents[entry.name] = entry.load()(settings)
        except Exception:
            log.exception("agent plug-in %s could not be loaded; it is not offered", entry.name)
    return agents
