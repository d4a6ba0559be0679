"""Agents turn a console request's ``target`` into something guacd can connect to.

An agent is any object with ``name`` and ``async resolve(target) -> Resolved``. The core only
looks agents up here, by name; third-party agents register through the ``guacbridge.agents``
entry-point group (a factory taking the Settings).

The core calls agents through :func:`resolve_within`, which gives up after the configured
``limits.agent_timeout`` (a 504 naming the agent). An agent's blocking work (an SDK's HTTP
calls, a file read) belongs in :func:`run_blocking`: the agents' own worker threads, so a
hanging upstream fills those and never asyncio's default executor, where the grant store's
calls run.
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
