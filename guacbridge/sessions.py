"""A console's sessions: the one use of its token, the page's reconnect secret, and what a
tunnel's end means.

A console link's token is spent once, by one conditional UPDATE in the grant store, either
by a tunnel (a third-party client: the console ends with that tunnel) or by the console page,
which trades it for a reconnect secret so that its tunnels can come back after a network drop
while the console lives. Refusals say why in words fit for the person holding the link, and
are audited when the console is known.

The reconnect secret travels in the tunnel's URL (a browser cannot give a WebSocket headers),
so it may land in a proxy's log; it is therefore rotated at every resume, so that one read
from a log is dead by the time it is read. The design, with its races:

- The grant store keeps two SHA-256 digests: the current secret and its successor, sent to
  the page but not yet seen back. A resume is one conditional UPDATE that accepts either;
  the secret used becomes the current one and a fresh successor replaces any earlier one.
- Right after that UPDATE the tunnel sends the successor to the page over the WebSocket
  (:data:`SECRET_OPCODE`, never in a URL), before guacd is even asked.
- The page switches to the successor at once and confirms it with its next page API call
  (it makes one straight away): the first use of the successor, by a resume or by a page
  call (``by_session``), makes it the current secret and the one before dead for good.
- A tunnel that drops before the page got the successor leaves the page with the secret it
  used, which is still the current one: the page is never locked out. A secret replayed
  from a log works only in the moment between a resume and the page's confirmation (the
  page confirms within one round trip), and such a takeover ends the page's tunnel.
- A page call with the secret it held just before (sent before the notice arrived, answered
  after the confirmation) gets 403; the page repeats such a call once with its new secret.
- An old secret (or a wrong one) is refused with CLIENT_UNAUTHORIZED and the words of
  ``store.sql.SECRET_REPLACED``; the page shows them and does not retry (it is not a status
  the page reconnects on). Typically a copied tab, once the other copy moved on.

A third-party client that spends the raw token holds no secret: nothing changes for it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from . import grants
from .audit import Audit, Client
from .config import Settings
from .consoles import Consoles
from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant, GrantStore, Refused
from .live import TAKEN_OVER, LiveTunnels
from .store import call

log = logging.getLogger(__name__)


# guacbridge's instruction to the page: args[0] is the page's new reconnect secret.
SECRET_OPCODE = "guacbridge-session"


class PageSession(NamedTuple):
    grant: Grant
    secret: str          # the page's reconnect secret, shown to it once


class Sessions:
    def __init__(self, settings: Settings, store: GrantStore, consoles: Consoles,
                 live: LiveTunnels, events: ConsoleEvents, audit: Audit,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.consoles = consoles
        self.live = live
        self.events = events
        self.audit = audit
        self.clock = clock

    async def start(self, token: str, extra: str | None, tunnel_id: str,
                    client: Client | None = None) -> Grant:
        """A tunnel consumes a one-time token; Refused says why not. Such a console has no
        reconnect secret: it ends with its tunnel."""
        if not token:
            raise Refused("no console token was given")
        try:
            grant = await call(self.store.consume, grants.hash_token(token),
                               grants.hash_token(extra) if extra else None, self.clock(),
                               tunnel_id=tunnel_id)
        except Refused as e:
            await self._refused(e, "tunnel", client)
            raise
        self.audit.record_soon(grant.id, "consumed", by="tunnel", tunnel_id=tunnel_id,
                               **(client or Client()).fields())
        return grant

    async def open_page(self, console_id: str, token: Any, extra: Any,
                        client: Client | None = None) -> PageSession:
        """The console page trades the one-time token for a reconnect secret."""
        if not isinstance(token, str) or not token:
            raise ConsoleError(400, "token is required")
        if extra is not None and not isinstance(extra, str):
            raise ConsoleError(400, "extra must be a string")
        secret = grants.new_token()
        try:
            grant = await call(self.store.consume, grants.hash_token(token),
                               grants.hash_token(extra) if extra else None, self.clock(),
                               session_hash=grants.hash_token(secret))
        except Refused as e:
            await self._refused(e, "page", client)
            raise ConsoleError(403, e.reason) from None
        if grant.id != console_id:    # a token for another console: burn it, say nothing more
            await call(self.store.close, grant.id, "token used on the wrong page", self.clock())
            raise ConsoleError(403, "this token does not belong to this console")
        log.info("console %s: page session started", grant.id)
        await self.events.record(grant.id, "consumed", by="page",
                                 **(client or Client()).fields())
        return PageSession(grant, secret)

    async def resume(self, console_id: str, secret: str, tunnel_id: str,
                     client: Client | None = None) -> PageSession:
        """A tunnel takes the console over with the page's reconnect secret; the tunnel
        that held it before ends. Returns the secret's successor, which the tunnel must send
        the page (see the module's docstring); Refused says why not."""
        successor = grants.new_token()
        try:
            grant = await call(self.store.resume, console_id, grants.hash_token(secret),
                               grants.hash_token(successor), tunnel_id, self.clock(),
                               self.settings.reconnect_window)
        except Refused as e:
            await self._refused(e, "tunnel", client)   # e.g. a secret replayed from a log
            raise
        self.live.stop(console_id, TAKEN_OVER)
        return PageSession(grant, successor)

    async def page_grant(self, console_id: str, secret: str) -> Grant:
        """The grant a page's reconnect secret speaks for; 403 if none."""
        grant = await call(self.store.by_session, console_id,
                           grants.hash_token(secret)) if secret else None
        if grant is None:
            raise ConsoleError(403, "this page's console session is not valid: it was resumed"
                                    " elsewhere with a newer secret")
        return grant

    async def up(self, console_id: str) -> None:
        """The tunnel saw the first frame without an error."""
        await call(self.store.mark_up, console_id, self.clock())
        log.info("console %s is up", console_id)

    async def tunnel_ended(self, grant: Grant, tunnel_id: str, reason: str, *,
                           bytes_out: int = 0, bytes_in: int = 0,
                           seconds: float | None = None) -> None:
        """A tunnel closed: a page console waits for a reconnect; any other one ends."""
        await self.audit.tunnel_ended(grant.id, tunnel_id, reason, bytes_out, bytes_in,
                                      seconds)
        if grant.has_session:
            await call(self.store.tunnel_ended, grant.id, tunnel_id, self.clock())
            log.info("console %s: tunnel ended (%s); reconnect possible for %d s", grant.id,
                     reason, self.settings.reconnect_window)
        else:
            await self.consoles.end(grant.id, reason)

    async def _refused(self, refusal: Refused, by: str, client: Client | None) -> None:
        """A known console's token was refused (used again, expired…): who tried, from where."""
        if refusal.console_id is not None:
            await self.events.record(refusal.console_id, "refused", by=by,
                                     reason=refusal.reason, **(client or Client()).fields())
