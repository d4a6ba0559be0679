"""Sharing a live console, and one-time links to its recording.

A share is a one-time link (``/console/{id}#share=…``) that lets someone else watch a console
(mode ``view``: guacd's ``read-only`` for that user) or work on it too (``control``). The
viewer's page trades the link's token for a secret of its own, and its tunnel joins the
guacd connection the console's owner holds (``select $<connection id>``). Shares end with the
console, or when the owner or an API caller revokes them; the viewer's tunnel ends then with
a status that says so. A playback link (mode ``playback``) works the same way for the player
page. Events go to the console's history through ``ConsoleEvents.record``.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import background, grants
from .audit import iso as _iso
from .consoles import Consoles
from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant, Refused
from .status import Status
from .store import call
from .store.shares import Share, ShareStore

log = logging.getLogger(__name__)

MODES = ("view", "control")
MAX_TTL = 3600              # seconds a share link may wait for its first use
PLAYBACK_SECONDS = 3600     # how long a player page may fetch the recording once opened
RECHECK_VIEWER = 5.0        # seconds between a viewer's looks at its share (revoked elsewhere)
ViewerStop = Callable[[Status, str, str], None]    # (Guacamole status, message, reason)


class OwnerAway(Exception):
    """The console's owner holds no guacd connection now: nothing to join (yet)."""
    MESSAGE = ("The console's owner is not connected right now; the view starts when they"
               " are.")


@dataclasses.dataclass(frozen=True)
class Viewer:
    """What a viewer's tunnel needs to join: the share, its console, guacd's connection."""
    share: Share
    grant: Grant
    address: tuple[str, int]
    connection_id: str

    @property
    def params(self) -> dict[str, str]:
        """The joining user's guacd parameters: read-only unless the share gives control
        (and the console itself is not read-only)."""
        read_only = self.share.mode == "view" or bool(self.grant.target.params.get("read-only"))
        return {"read-only": "true" if read_only else ""}


class Shares:
    def __init__(self, consoles: Consoles, events: ConsoleEvents, store: ShareStore) -> None:
        self.consoles = consoles
        self.events = events
        self.store = store
        self._viewers: dict[str, dict[str, ViewerStop]] = {}   # console id → share id → stop
        events.add_listener(self._on_event)

    # -- links ----------------------------------------------------------------------------

    async def create(self, console_id: str, body: Any, created_by: str) -> dict[str, Any]:
        """A new one-time share link for a live (or not yet used) direct console."""
        if not isinstance(body, Mapping):
            raise ConsoleError(400, "the request body must be a JSON object")
        unknown = sorted(set(body) - {"mode", "ttl"})
        if unknown:
            raise ConsoleError(400, f"unknown field(s): {', '.join(unknown)}")
        mode = body.get("mode", "view")
        if mode not in MODES:
            raise ConsoleError(400, 'mode must be "view" or "control"')
        ttl = body.get("ttl", self.consoles.settings.shares_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL:
            raise ConsoleError(400, f"ttl must be a whole number of seconds from 1 to {MAX_TTL}")
        grant = await self._open_grant(console_id)
        if grant.sink != "direct":
            raise ConsoleError(409, "only consoles of the direct sink can be shared here;"
                                    " use Guacamole's own sharing for the guacamole sink")
        return await self._issue(console_id, mode, ttl, created_by)

    async def playback_link(self, console_id: str, created_by: str) -> dict[str, Any]:
        """A one-time link to the player page for this console's recording."""
        reply = await self._issue(console_id, "playback", self.consoles.settings.use_by,
                                  created_by)
        return {"player_url": reply["url"], "player_expires_at": reply["expires_at"]}

    async def _issue(self, console_id: str, mode: str, ttl: int,
                     created_by: str) -> dict[str, Any]:
        now = self.consoles.clock()
        token = grants.new_token()
        share = Share(id=grants.new_id(), console_id=console_id, mode=mode,
                      created_by=created_by, created_at=now, use_by=now + ttl)
        await call(self.store.issue, share, grants.hash_token(token))
        if mode != "playback":
            await self.events.record(console_id, "share.created", share_id=share.id,
                                             mode=mode, by=created_by)
        return self.reply(share, token)

    async def list(self, console_id: str) -> dict[str, Any]:
        grant = await self._grant(console_id)
        shares = await call(self.store.of_console, console_id)
        if grant.closed_at is not None:   # ended with it, even before that is written down
            shares = [s if s.ended_at is not None else dataclasses.replace(
                s, ended_at=grant.closed_at, end_reason="the console ended", live_tunnel=None)
                for s in shares]
        return {"result": True, "details": None, "id": console_id,
                "shares": [self.reply(s) for s in shares]}

    async def revoke(self, console_id: str, share_id: str, by: str) -> dict[str, Any]:
        share = await call(self.store.get, share_id)
        if share is None or share.console_id != console_id or share.mode == "playback":
            raise ConsoleError(404, f"console {console_id} has no share {share_id}")
        if share.ended_at is None:
            share = await call(self.store.end, share_id, f"revoked by {by}",
                               self.consoles.clock()) or share
            self._stop_viewer(console_id, share_id, Status.SESSION_CLOSED,
                              "The console's owner has stopped sharing it with you.",
                              f"share revoked by {by}")
            await self.events.record(console_id, "share.revoked", share_id=share_id, by=by)
        return self.reply(share)

    def reply(self, share: Share, token: str | None = None) -> dict[str, Any]:
        now = self.consoles.clock()
        body: dict[str, Any] = {
            "result": True, "details": None, "id": share.id, "console_id": share.console_id,
            "mode": share.mode, "state": share.state(now), "created_by": share.created_by,
            "created_at": _iso(share.created_at), "expires_at": _iso(share.use_by),
            "joined_at": _iso(share.consumed_at), "viewer": share.viewer,
            "watching": share.live_tunnel is not None, "ended_at": _iso(share.ended_at),
            "end_reason": share.end_reason,
        }
        if token is not None:
            base = self.consoles.settings.base_url
            body["url"] = (f"{base}/recording/{share.console_id}#token={token}"
                           if share.mode == "playback"
                           else f"{base}/console/{share.console_id}#share={token}")
        return body

    # -- viewers' pages -------------------------------------------------------------------

    async def join(self, console_id: str, token: Any, viewer: str,
                   playback: bool = False) -> tuple[Share, str]:
        """A viewer's page (or the player) trades the link's token for its own secret:
        ``<share id>.<secret>``, which its tunnels (or file fetches) present."""
        if not isinstance(token, str) or not token:
            raise ConsoleError(400, "token is required")
        secret = grants.new_token()
        try:
            share = await call(self.store.consume, grants.hash_token(token),
                                      grants.hash_token(secret), viewer,
                                      self.consoles.clock())
        except Refused as e:
            raise ConsoleError(403, e.reason) from None
        if share.console_id != console_id or (share.mode == "playback") != playback:
            await call(self.store.end, share.id, "link used on the wrong page",
                              self.consoles.clock())
            raise ConsoleError(403, "this link does not belong to this page")
        if not playback:
            await self.events.record(console_id, "share.joined", share_id=share.id,
                                             mode=share.mode, viewer=viewer)
        return share, f"{share.id}.{secret}"

    async def by_secret(self, console_id: str, secret: str,
                        modes: tuple[str, ...] = MODES) -> Share:
        """The share a secret speaks for, if it still holds and is of one of *modes* (a
        viewer's secret never fetches a recording, a player's never joins); else Refused."""
        share_id, _, raw = (secret or "").partition(".")
        share = await call(self.store.by_session, share_id,
                                  grants.hash_token(raw)) if raw else None
        if share is None or share.console_id != console_id or share.mode not in modes:
            raise Refused("this shared view's session is not valid" if modes == MODES
                          else "this playback session is not valid")
        if share.ended_at is not None:
            raise Refused(f"this share has ended ({share.end_reason})")
        if share.mode == "playback" and \
                self.consoles.clock() > (share.consumed_at or 0) + PLAYBACK_SECONDS:
            raise Refused("this playback session has expired; ask for a new player link")
        return share

    async def page_status(self, console_id: str, secret: str) -> tuple[Share, Grant]:
        try:
            share = await self.by_secret(console_id, secret)
        except Refused as e:
            raise ConsoleError(403, e.reason) from None
        return share, await self._grant(console_id)

    # -- viewers' tunnels -----------------------------------------------------------------

    async def start_viewer(self, console_id: str, secret: str, tunnel_id: str) -> Viewer:
        """Refused (the link is not good), OwnerAway (nothing to join now) or the Viewer."""
        share = await self.by_secret(console_id, secret)
        grant = await self.consoles.current(console_id)
        if grant is None or grant.closed_at is not None:
            raise Refused("the console has ended")
        live = await call(self.store.live, console_id)
        if live is None:
            raise OwnerAway(OwnerAway.MESSAGE)
        self._stop_viewer(console_id, share.id, Status.SESSION_CLOSED,
                          "This shared view was opened again elsewhere.", "opened again")
        await call(self.store.set_tunnel, share.id, tunnel_id)
        await self.events.record(console_id, "share.watching", share_id=share.id,
                                         mode=share.mode)
        return Viewer(share, grant, live.address, live.connection_id)

    def attach_viewer(self, console_id: str, share_id: str,
                      stop: ViewerStop) -> Callable[[], None]:
        self._viewers.setdefault(console_id, {})[share_id] = stop

        def detach() -> None:
            viewers = self._viewers.get(console_id, {})
            if viewers.get(share_id) is stop:
                del viewers[share_id]
                if not viewers:
                    self._viewers.pop(console_id, None)
        return detach

    async def viewer_left(self, share: Share, tunnel_id: str, reason: str) -> None:
        await call(self.store.set_tunnel, share.id, None, only_if=tunnel_id)
        await self.events.record(share.console_id, "share.left", share_id=share.id,
                                         reason=reason)

    async def still_joined(self, viewer: Viewer) -> str | None:
        """None while the viewer may stay; else why not (for the tunnel's periodic look)."""
        share = await call(self.store.get, viewer.share.id)
        if share is None or share.ended_at is not None:
            return share.end_reason if share else "share removed"
        live = await call(self.store.live, viewer.share.console_id)
        if live is None or live.connection_id != viewer.connection_id:
            return "owner away"       # gone, or on a new connection: the page comes back
        return None

    async def watch_viewer(self, viewer: Viewer, fail: ViewerStop,
                           stop: Callable[[str], None]) -> None:
        """For as long as a viewer's tunnel lives: it ends (*fail* with a status, or *stop*
        with a reason) with its share (revoked, here or on another instance), with the
        owner's connection, and with the console."""
        console_id = viewer.share.console_id
        while True:
            grant = await self.consoles.current(console_id)
            now = self.consoles.clock()
            if grant is not None and grant.closed_at is None:
                gone = await self.still_joined(viewer)
                if gone == "owner away":
                    return fail(Status.UPSTREAM_UNAVAILABLE, OwnerAway.MESSAGE, gone)
                if gone is not None:
                    return fail(Status.SESSION_CLOSED, f"This shared view has ended: {gone}.",
                                gone)
            if grant is None or grant.closed_at is not None:
                return stop((grant.close_reason or "closed") if grant else "console removed")
            if grant.deadline is None or now >= grant.deadline:
                return stop("time limit reached")
            await asyncio.sleep(min(grant.deadline - now, RECHECK_VIEWER))

    def watching(self, console_id: str) -> int:
        return len(self._viewers.get(console_id, {}))

    # -- the owner's tunnel ---------------------------------------------------------------

    async def owner_connected(self, console_id: str, address: tuple[str, int],
                              connection_id: str) -> None:
        await call(self.store.set_live, console_id, address, connection_id,
                          self.consoles.clock())

    async def owner_left(self, console_id: str, connection_id: str) -> None:
        """Viewers follow the owner: their page comes back to the owner's next connection."""
        await call(self.store.clear_live, console_id, connection_id)
        if not self._viewers.get(console_id):
            return
        grant = await self.consoles.current(console_id)
        if grant is None or grant.closed_at is not None:    # the console ended: so do they
            return self._end_viewers(console_id, grant.close_reason if grant else None)
        for share_id in list(self._viewers.get(console_id, {})):
            self._stop_viewer(console_id, share_id, Status.UPSTREAM_UNAVAILABLE,
                              "The console's owner is not connected right now; the view"
                              " resumes when they are.", "owner left")

    # -- internals ------------------------------------------------------------------------

    def _on_event(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "closed":    # the viewers first, before the owner's tunnel says "away"
            self._end_viewers(body["id"], body.get("close_reason"))
            background.soon(self._console_closed(body["id"], body.get("close_reason")))

    async def _console_closed(self, console_id: str, reason: str | None) -> None:
        try:
            ended = await call(self.store.end_console, console_id,
                                      f"the console ended ({reason})", self.consoles.clock())
        except ConsoleError:
            log.warning("console %s: its shares could not be ended now", console_id)
            ended = []
        for share_id in ended:
            await self.events.record(console_id, "share.ended", share_id=share_id,
                                             reason="the console ended")

    def _end_viewers(self, console_id: str, reason: str | None) -> None:
        for share_id in list(self._viewers.get(console_id, {})):
            self._stop_viewer(console_id, share_id, Status.SESSION_CLOSED,
                              f"The console session has ended: {reason or 'closed'}.",
                              "console ended")

    def _stop_viewer(self, console_id: str, share_id: str, status: Status, message: str,
                     reason: str) -> None:
        stop = self._viewers.get(console_id, {}).get(share_id)
        if stop is not None:
            stop(status, message, reason)

    async def _open_grant(self, console_id: str) -> Grant:
        grant = await self._grant(console_id)
        state = grant.state(self.consoles.clock())
        if state in ("closed", "expired"):
            raise ConsoleError(409, f"console {console_id} has {state}; it cannot be shared")
        return grant

    async def _grant(self, console_id: str) -> Grant:
        grant = await self.consoles.current(console_id)
        if grant is None:
            raise ConsoleError(404, f"no console with id {console_id}")
        return grant
