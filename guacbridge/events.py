"""What happens to consoles, told once: the audit trail and everyone listening.

The core emits the lifecycle (``opened``, ``extended``, ``closed``) with the console's reply
body, which holds no secret; features record their own kinds (``recording.*``, ``share.*``)
into the trail, and those reach the listeners too. Listeners: the broker (publishes events),
metrics, the per-owner caps, shares (viewers end with their console).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .audit import Audit, iso

log = logging.getLogger(__name__)
Listener = Callable[[str, dict[str, Any]], None]


class ConsoleEvents:
    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Called with (kind, body): a lifecycle kind and the reply body, or a feature's
        kind and its event."""
        self._listeners.append(listener)

    def emit(self, kind: str, body: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(kind, body)
            except Exception:
                log.exception("console event listener failed")

    @property
    def listened(self) -> bool:
        """Whether anyone listens (a reply body need not be made for no one)."""
        return bool(self._listeners)

    async def record(self, console_id: str, kind: str, **data: Any) -> None:
        """Add to the console's trail (``GET /api/v1/consoles/{id}/events``): a kind and
        plain facts, never a token or password (such keys raise ValueError). The features'
        own kinds (with a dot) also go to the listeners, so that the broker publishes them."""
        await self.audit.record(console_id, kind, **data)
        if "." not in kind:
            return
        log.info("console %s: %s %s", console_id, kind,
                 " ".join(f"{k}={v}" for k, v in data.items()))
        self.emit(kind, {"id": console_id, "event": kind, "at": iso(self.audit.clock()),
                         **data})
