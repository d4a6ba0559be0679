"""A console's recording over HTTP: its description and files for API callers
(``GET /api/v1/consoles/{id}/recording``, ``…/recording/{part}``, a part's first frame as a
small PNG at ``…/recording/{part}/thumbnail``; scope: read), and the player page
(``/recording/{id}``) that plays it with guacamole-common-js's ``SessionRecording`` and lists
its parts with their thumbnails.

The API's answer carries a one-time player link (like a console link); the page trades that
link's token for a playback session, and fetches the files with it.
"""
from __future__ import annotations

import asyncio
from typing import Any

import tornado.web

from .. import resources
from ..consoles import Consoles
from ..errors import ConsoleError
from ..grants import Refused
from ..recordings import PATH_PARAM, RecordingError, RecordingFile, Recordings
from ..shares import Shares
from ..thumbnails import Thumbnails, width_of
from .access import RedactedLogging
from .api import JsonHandler, answers
from .page import CSP

CHUNK = 256 * 1024
# The console page's policy without its WebSocket origin: the player only fetches from here
# (its files and thumbnails, shown from blob: URLs).
PLAYER_CSP = CSP.replace(" {tunnel}", "")
PLAYBACK_HEADER = "X-Playback-Session"


async def describe(consoles: Consoles, recordings: Recordings,
                   console_id: str) -> dict[str, Any]:
    grant = await consoles.current(console_id)
    if grant is None:
        raise ConsoleError(404, f"no console with id {console_id}")
    try:
        return await asyncio.to_thread(recordings.describe, console_id,
                                       PATH_PARAM in grant.target.params,
                                       grant.consumed_at is not None)
    except RecordingError as e:
        raise ConsoleError(e.status, e.details) from None


async def send_file(handler: tornado.web.RequestHandler, recordings: Recordings,
                    console_id: str, part: int) -> None:
    """Stream one recording file: guacd's own protocol, as text."""
    try:
        found: RecordingFile = await asyncio.to_thread(recordings.file, console_id, part)
        f = await asyncio.to_thread(found.path.open, "rb")
    except RecordingError as e:
        raise ConsoleError(e.status, e.details) from None
    except OSError as e:
        raise ConsoleError(500, f"the recording cannot be read: {e.strerror}") from None
    handler.set_header("Content-Type", "application/octet-stream")
    handler.set_header("Content-Disposition",
                       f'attachment; filename="{console_id}-{part}.guac"')
    handler.set_header("Content-Length", str(found.size))
    try:
        left = found.size      # guacd may still be writing: send what was there
        while left > 0:
            data = await asyncio.to_thread(f.read, min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            handler.write(data)
            await handler.flush()
    finally:
        f.close()
    handler.finish()


async def send_thumbnail(handler: tornado.web.RequestHandler, recordings: Recordings,
                         thumbnails: Thumbnails, console_id: str, part: int) -> None:
    """A part's first complete frame as a PNG, ``?width=`` pixels wide (default 160)."""
    try:
        width = width_of(handler.get_query_argument("width", None))
        path = await asyncio.to_thread(recordings.path, console_id, part)
        png = await thumbnails.png(path, width)
    except RecordingError as e:
        raise ConsoleError(e.status, e.details) from None
    handler.set_header("Content-Type", "image/png")
    handler.finish(png)


class WithShares(JsonHandler):
    """The endpoints of shares and recordings (player links are shares)."""

    def initialize(self, shares: Shares, recordings: Recordings,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.shares = shares
        self.recordings = recordings

    async def describe(self, console_id: str) -> dict[str, Any]:
        return await describe(self.consoles, self.recordings, console_id)

    async def playback_session(self, console_id: str) -> None:
        """The player's own requests carry its playback session, not an API key: a 403
        unless it is a live playback session of this console."""
        try:
            await self.shares.by_secret(console_id,
                                        self.request.headers.get(PLAYBACK_HEADER, ""),
                                        modes=("playback",))
        except Refused as e:
            raise ConsoleError(403, e.reason) from None


class RecordingApiHandler(WithShares):
    @answers
    async def get(self, console_id: str) -> None:
        key = self.api_key("read")
        await self.owned(console_id, key)
        body = await self.describe(console_id)
        link = await self.shares.playback_link(console_id, key.name)
        self.send({"result": True, "details": None, "id": console_id, **body, **link})


class RecordingFileApiHandler(WithShares):
    @answers
    async def get(self, console_id: str, part: str) -> None:
        await self.owned(console_id, self.api_key("read"))
        await self.describe(console_id)
        await send_file(self, self.recordings, console_id, int(part))


class WithThumbnails(WithShares):
    def initialize(self, thumbnails: Thumbnails,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.thumbnails = thumbnails


class ThumbnailApiHandler(WithThumbnails):
    @answers
    async def get(self, console_id: str, part: str) -> None:
        await self.owned(console_id, self.api_key("read"))     # as the file itself
        await self.describe(console_id)
        await send_thumbnail(self, self.recordings, self.thumbnails, console_id, int(part))


class PlayerPageHandler(RedactedLogging, tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", PLAYER_CSP)
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def get(self, console_id: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish((resources.folder("html") / "player.html").read_bytes())


class PlayerSessionHandler(WithShares):
    @answers
    async def post(self, console_id: str) -> None:
        """Trade the player link's token (in the body) for a playback session."""
        body = self.json_object()
        share, secret = await self.shares.join(console_id, body.get("token"),
                                               self.request.remote_ip or "", playback=True)
        await self.shares.events.record(console_id, "recording.played",
                                        by=share.created_by, viewer=share.viewer)
        self.send({"result": True, "details": None, "id": console_id, "session": secret,
                   **await self.describe(console_id)}, 201)


class PlayerFileHandler(WithShares):
    @answers
    async def get(self, console_id: str, part: str) -> None:
        await self.playback_session(console_id)
        await send_file(self, self.recordings, console_id, int(part))


class PlayerThumbnailHandler(WithThumbnails):
    @answers
    async def get(self, console_id: str, part: str) -> None:
        await self.playback_session(console_id)
        await send_thumbnail(self, self.recordings, self.thumbnails, console_id, int(part))


def routes(cs: dict[str, Any]) -> list[tuple]:
    """*cs*: what WithShares takes."""
    uuid = r"([0-9a-f-]{36})"
    thumbs = {**cs, "thumbnails": Thumbnails()}      # one cache per application
    return [
        (rf"/api/v1/consoles/{uuid}/recording", RecordingApiHandler, cs),
        (rf"/api/v1/consoles/{uuid}/recording/(\d{{1,6}})", RecordingFileApiHandler, cs),
        (rf"/api/v1/consoles/{uuid}/recording/(\d{{1,6}})/thumbnail", ThumbnailApiHandler,
         thumbs),
        (rf"/recording/{uuid}", PlayerPageHandler),
        (rf"/recording/{uuid}/session", PlayerSessionHandler, cs),
        (rf"/recording/{uuid}/file/(\d{{1,6}})", PlayerFileHandler, cs),
        (rf"/recording/{uuid}/file/(\d{{1,6}})/thumbnail", PlayerThumbnailHandler, thumbs),
    ]
