"""The static agent: the request itself says where the console is and how to log in."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import parameters
from ..grants import Target
from . import AgentError, Resolved


class StaticAgent:
    name = "static"
    follows = False      # the request's own answer: it neither expires nor moves

    async def resolve(self, target: Mapping[str, Any]) -> Resolved:
        given = dict(target)
        given.pop("agent", None)
        protocol = given.pop("protocol", "vnc")
        if not isinstance(protocol, str):
            raise AgentError(400, "target.protocol must be a string")
        try:
            return Resolved(Target(protocol, parameters.validate(protocol, given)))
        except parameters.InvalidParameters as e:
            raise AgentError(400, f"target: {e}") from None
