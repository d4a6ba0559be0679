"""Graceful restart, the tunnel side: which tunnels are live, the notice that asks each
browser to move, and the wait for them to go.

On SIGTERM the service first stops accepting connections, then :meth:`Drain.announce` sends
every live tunnel (and any that comes up later) a ``guacbridge-restart`` instruction. The
console page answers it by opening a new tunnel at once with its reconnect secret; with
``reuse_port`` or a proxy in front, that lands on another instance sharing the grant store.
Other clients ignore an opcode they do not know (guacamole-common-js does) and keep working
until :meth:`Drain.close` ends what is left with 0x0208, which they may retry.
It knows nothing of grants: moving a console is the core's ``resume_session``.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

RESTART_OPCODE = "guacbridge-restart"


class Movable(Protocol):
    def announce_restart(self, notice: str) -> None:
        """Send the browser the restart instruction with *notice*."""

    def close_for_restart(self) -> None:
        """End the tunnel with 0x0208: the service is going away."""


class Drain:
    def __init__(self) -> None:
        self._tunnels: set[Movable] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self.notice: str | None = None

    def add(self, tunnel: Movable) -> Callable[[], None]:
        """Register a live tunnel; returns what unregisters it. Once the restart has been
        announced, a tunnel that comes up is told at once."""
        self._tunnels.add(tunnel)
        self._empty.clear()
        if self.notice is not None:
            tunnel.announce_restart(self.notice)

        def remove() -> None:
            self._tunnels.discard(tunnel)
            if not self._tunnels:
                self._empty.set()
        return remove

    def __len__(self) -> int:
        return len(self._tunnels)

    def announce(self, notice: str) -> int:
        """Ask every live tunnel's browser to move; the number asked."""
        self.notice = notice
        for tunnel in list(self._tunnels):
            tunnel.announce_restart(notice)
        return len(self._tunnels)

    async def wait(self, seconds: float) -> int:
        """Until no tunnel is left or *seconds* have passed; the number left."""
        try:
            await asyncio.wait_for(self._empty.wait(), seconds)
        except TimeoutError:
            pass
        return len(self._tunnels)

    def close(self) -> int:
        """End every tunnel still here; the number ended."""
        left = list(self._tunnels)
        for tunnel in left:
            tunnel.close_for_restart()
        return len(left)
