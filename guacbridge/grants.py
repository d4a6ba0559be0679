"""Console grants: the one-time token that opens a console, and the console's lifetime.

A token is random (256 bits), shown once in the reply and never stored or logged: stores keep
only its SHA-256. Consuming it is one atomic conditional UPDATE in the store, so two browsers
racing with the same URL cannot both win. This module owns the data and the rules; the stores
(``guacbridge.store``) own persistence and implement :class:`GrantStore`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from .audit import AuditStore


def new_token() -> str:
    """A URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True)
class Target:
    """Where guacd connects: a protocol and its guacd parameters (secrets included; the
    stores keep them sealed, see ``keyring.py``)."""
    protocol: str
    params: dict[str, str]

    def public(self) -> dict[str, Any]:
        """What may be shown to API callers: no secrets."""
        shown = {k: v for k, v in self.params.items() if k in PUBLIC_PARAMS}
        return {"protocol": self.protocol, **shown}


PUBLIC_PARAMS = frozenset({"hostname", "port", "username", "domain", "color-depth", "read-only"})


@dataclasses.dataclass(frozen=True)
class Grant:
    id: str
    target: Target
    owner: str
    user: str | None
    created_at: float
    use_by: float                 # the token must be used before this
    duration: int                 # session length granted at first use (seconds)
    max_duration: int             # hard cap on the session, counted from first use
    has_extra: bool = False
    consumed_at: float | None = None
    deadline: float | None = None  # session end; set on first use
    closed_at: float | None = None
    close_reason: str | None = None
    has_session: bool = False      # the console page holds a reconnect secret
    live_tunnel: str | None = None
    idle_since: float | None = None
    sink: str = "direct"           # or "guacamole": a connection in Guacamole's database
    sink_ref: str | None = None    # the Guacamole connection id
    sink_state: str | None = None  # provisioning → ready → removed
    up_at: float | None = None     # the first frame arrived without an error
    power: bool = False            # the console may switch its target's power
    follows: bool = False          # its agent is asked again for each new guacd connection

    def state(self, now: float) -> str:
        """pending → connecting → active → closed. guacd's ``ready`` comes before the server
        is reached, so a direct console is "connecting" until its first frame. A pending grant
        past use_by, or a live one past its deadline, is "expired" before the sweeper says so."""
        if self.closed_at is not None:
            return "closed"
        if self.consumed_at is None:
            return "pending" if now < self.use_by else "expired"
        if self.deadline is None or now >= self.deadline:
            return "expired"
        return "connecting" if self.sink == "direct" and self.up_at is None else "active"

    @property
    def hard_deadline(self) -> float | None:
        return None if self.consumed_at is None else self.consumed_at + self.max_duration


class SessionEnd(NamedTuple):
    """What the live-tunnel watcher re-reads of a console it holds a tunnel of."""
    deadline: float | None
    closed_at: float | None
    close_reason: str | None
    live_tunnel: str | None      # the tunnel that holds the console now, on any instance


class Ended(NamedTuple):
    """A console closed by the store itself (the expiry sweep), and why."""
    console_id: str
    reason: str


class Rekeyed(NamedTuple):
    """The outcome of resealing every grant with the current key."""
    resealed: int
    current: int                 # already sealed with the current key
    failed: list[str]            # ids that no configured key opens


class Refused(Exception):
    """A token was not accepted; ``reason`` is safe to show the person holding the token."""

    def __init__(self, reason: str, console_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.console_id = console_id   # the console the token belonged to, if any (audit)


class Duplicate(Exception):
    """A grant with this id exists already (a job delivered twice)."""


class GrantStore(AuditStore, Protocol):
    """Persistence of grants, and of their audit trail. Implementations: ``store.sqlite``
    (default) and ``store.mysql``."""

    def issue(self, grant: Grant, token_hash: str, extra_hash: str | None,
              asked_target: dict[str, Any] | None = None) -> None:
        """Store a new grant; Duplicate if its id is taken. *asked_target*: the target as
        the request gave it (the agent's input), kept sealed for a console that has the
        power right or follows its agent (``grant.power``, ``grant.follows``)."""

    def asked_target(self, grant_id: str) -> dict[str, Any] | None:
        """The target the console was asked for, if it was kept; None otherwise."""

    def locate(self, grant_id: str, target: Target) -> bool:
        """Set the target of a console that waited for its server (protocol ''); False if
        it has one already or has ended."""

    def delete(self, grant_id: str) -> None:
        """Forget a grant that never took effect (its sink failed to provision)."""

    def rotate_token(self, grant_id: str, token_hash: str) -> bool:
        """Replace a token nobody has used yet; False if it was used or the grant ended."""

    def consume(self, token_hash: str, extra_hash: str | None, now: float, *,
                session_hash: str | None = None, tunnel_id: str | None = None) -> Grant:
        """Atomically mark the grant first-used and start its session; raise Refused.
        The page passes a reconnect secret's hash; a tunnel passes its own id."""

    def resume(self, grant_id: str, session_hash: str, next_hash: str, tunnel_id: str,
               now: float, window: float) -> Grant:
        """Let a tunnel take the console over with the reconnect secret (the current one or
        its sent successor) and, in the same update, make it the current one and *next_hash*
        its successor; raise Refused (an old or wrong secret: the words of
        ``store.sql.SECRET_REPLACED``)."""

    def by_session(self, grant_id: str, session_hash: str) -> Grant | None:
        """The grant this secret speaks for, or None. Using the sent successor confirms it:
        it becomes the current secret and the one before stops working."""

    def tunnel_ended(self, grant_id: str, tunnel_id: str, now: float) -> None:
        """Start the reconnect window, if that tunnel still held the console."""

    def get(self, grant_id: str) -> Grant | None: ...

    def session_ends(self, grant_ids: Sequence[str]) -> dict[str, SessionEnd]:
        """By id, for the grants that exist."""

    def set_deadline(self, grant_id: str, *, deadline: float | None = None,
                     duration: int | None = None) -> Grant | None: ...

    def close(self, grant_id: str, reason: str, now: float) -> Grant | None:
        """Record the end once; later calls keep the first reason. None if unknown."""

    def set_sink(self, grant_id: str, ref: str | None, state: str) -> None: ...

    def mark_up(self, grant_id: str, now: float) -> None:
        """The console's first frame arrived (only the first call counts)."""

    def replied(self, job_id: str, message_id: str) -> bool:
        """Whether this broker message was answered already."""

    def mark_replied(self, job_id: str, message_id: str, now: float) -> None: ...

    def sinks_to_clean(self, now: float, stale: float) -> list[Grant]:
        """Guacamole-sink grants whose connection must go: closed ones not yet cleaned, and
        ones stuck provisioning for *stale* seconds (a crash mid-way)."""

    def rekey(self) -> Rekeyed:
        """Reseal every grant's params with the key ring's first key."""

    def expire(self, now: float, window: float) -> list[Ended]:
        """Close every grant past use_by (unused), past its deadline, or with no tunnel for
        longer than the reconnect *window*."""
