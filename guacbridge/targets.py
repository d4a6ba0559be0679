"""Where a new guacd connection of a console goes, decided now: the one place that answers.

A console's target was found when it was made, but an answer can go stale: an oVirt
console's VNC password is a ticket that lives two minutes, and its VM may have migrated to
another host since. So every new guacd connection of the console's owner (the first one, a
reconnect with the page's secret, a resume on another instance after a restart) and anything
else that connects with a console's target (a screenshot) asks :meth:`Targets.for_connection`:

- a console whose agent *follows* (``agents.follows``: oVirt) has its agent asked again with
  the target as the request gave it (kept sealed in the grant store), bounded by
  ``limits.agent_timeout``; guacbridge's own parameters (recording, the prompt mark) are
  kept; the console's lifetime is not touched; the trail gets ``target.resolved`` (protocol,
  hostname, port; never the ticket);
- any other console (static, BMC) connects to the target stored at creation, unchanged;
- either way the answer is judged by the target policy right before guacd is asked, since a
  name's addresses (or the agent's answer) may have changed since the console was made;
- a serial console's target (``protocol = "serial"``) is judged as its line's real far end
  (the BMC), and only then is the line opened and guacd handed the bridge's one-connection
  telnet listener in its place (serial_bridge.py).

A refusal is a :class:`ConsoleError` whose status and words say why ("VM web-12 is not
running (status down): start it and retry", 504 naming the agent that did not answer); it is
also put in the console's trail as ``target.failed``. Viewers of a share do not come here:
they join the owner's guacd connection.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from . import parameters
from .agents import Agent, AgentError, resolve_within
from .config import Settings
from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant, GrantStore, Target
from .metrics import Metrics
from .policy import Policy
from .power import waiting
from .serial import PROTOCOL as SERIAL
from .serial import SerialError
from .serial_bridge import Bridges
from .store import call

log = logging.getLogger(__name__)

SERVER_OFF = ("the server is off: start it first (the console page's Start, or"
              " POST /api/v1/consoles/{id}/power)")


class Targets:
    def __init__(self, settings: Settings, store: GrantStore, agents: Mapping[str, Agent],
                 events: ConsoleEvents, policy: Policy, metrics: Metrics,
                 serial: Bridges | None = None) -> None:
        self.settings = settings
        self.store = store
        self.agents = dict(agents)
        self.events = events
        self.policy = policy
        self.metrics = metrics
        self.serial = serial or Bridges(settings)

    async def for_connection(self, grant: Grant) -> Target:
        """The target a new guacd connection of *grant*'s console connects to now, with
        guacd's parameters (secrets included): asked of the agent afresh when it follows,
        else the stored one; judged by the target policy either way. This is the only
        place that answers "what does a new guacd connection of this console connect to":
        the tunnel, screenshots and any later kind of console (a serial line's bridge) get
        it here. ConsoleError (status, words fit for the browser) when it may not connect;
        the refusal is in the console's trail."""
        try:
            if waiting(grant):     # opened for a server that was off, not on yet
                raise ConsoleError(409, SERVER_OFF)
            agent_name: str | None = None
            target = grant.target
            if grant.follows:
                agent_name, target = await self._again(grant)
            judged = await self.policy.judge(grant.owner, agent_name, target.protocol,
                                             target.params)
            if target.protocol == SERIAL:    # the far end passed: now the line and its bridge
                try:
                    return await self.serial.open(grant.id, Target(SERIAL, judged.params))
                except SerialError as e:
                    raise ConsoleError(e.status, e.details) from None
        except ConsoleError as e:
            log.warning("console %s: not connecting: %s", grant.id, e.details)
            await self.events.record(grant.id, "target.failed", status=e.status,
                                     details=e.details)
            raise
        if agent_name is not None:
            await self.events.record(grant.id, "target.resolved", agent=agent_name,
                                     protocol=target.protocol,
                                     hostname=judged.params.get("hostname"),
                                     port=judged.params.get("port"))
        return Target(target.protocol, judged.params)

    async def _again(self, grant: Grant) -> tuple[str, Target]:
        """The agent's answer now for the target the console was asked for, with
        guacbridge's own parameters of the stored target kept."""
        asked = await call(self.store.asked_target, grant.id)
        if asked is None:
            raise ConsoleError(500, f"console {grant.id} follows its agent but its target"
                                    " as asked is not kept")
        name = asked.get("agent", "static")
        agent = self.agents.get(name) if isinstance(name, str) else None
        if agent is None:
            raise ConsoleError(503, f"agent {name!r} is not configured on this instance")
        started = time.monotonic()
        try:
            resolved = await resolve_within(agent, asked, self.settings.limits_agent_timeout)
        except AgentError as e:
            raise ConsoleError(e.status, e.details) from None
        finally:
            self.metrics.agent.labels(agent.name).observe(time.monotonic() - started)
        fresh = resolved.target
        return agent.name, Target(fresh.protocol, {**fresh.params, **own(grant.target)})


def own(target: Target) -> dict[str, str]:
    """guacbridge's own parameters among a stored target's (recording, the prompt mark):
    those no request or agent may set, which a fresh answer must not lose."""
    allowed = parameters.ALLOWED.get(target.protocol, frozenset())
    return {k: v for k, v in target.params.items() if k not in allowed}
