"""Agents turn a console request's ``target`` into something guacd can connect to.

An agent is any object with ``name`` and ``async resolve(target) -> Resolved``. The core only
looks agents up here, by name; third-party agents register through the ``guacbridge.agents``
entry-point group (a factory taking the Settings).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Protocol

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
