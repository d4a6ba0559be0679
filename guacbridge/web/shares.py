"""Share links over HTTP: for API callers (``/api/v1/consoles/{id}/shares``; scopes: create
to make and list them, revoke to end one), for the owner's console page (authorised by its
reconnect secret) and for the viewer's page (``/console/{id}/join``). Thin: every rule is in
``guacbridge.shares``.
"""
from __future__ import annotations

from typing import Any

from .api import answers
from .page import PageApiHandler
from .recording import WithShares

VIEWER_HEADER = "X-Share-Session"


class SharesApiHandler(WithShares):
    @answers
    async def post(self, console_id: str) -> None:
        key = self.api_key("create")
        await self.owned(console_id, key)
        reply = await self.shares.create(console_id, self.json_body(), f"API key {key.name}")
        self.set_header("Location", f"{self.request.path}/{reply['id']}")
        self.send(reply, 201)

    @answers
    async def get(self, console_id: str) -> None:
        await self.owned(console_id, self.api_key("read"))
        self.send(await self.shares.list(console_id))


class ShareApiHandler(WithShares):
    @answers
    async def delete(self, console_id: str, share_id: str) -> None:
        key = self.api_key("revoke")
        await self.owned(console_id, key)
        self.send(await self.shares.revoke(console_id, share_id, f"API key {key.name}"))


# The page's share handlers take both bases' parts: each initialize takes its own and hands
# the rest on (**base), which mypy cannot follow through two bases.
class PageSharesHandler(PageApiHandler, WithShares):  # type: ignore[misc]
    """The owner's page lists its shares and makes new ones."""

    @answers
    async def get(self, console_id: str) -> None:
        await self.grant(console_id)
        self.send(await self.shares.list(console_id))

    @answers
    async def post(self, console_id: str) -> None:
        await self.grant(console_id)
        self.send(await self.shares.create(console_id, self.json_body(), "the console's owner"),
                  201)


class PageRevokeHandler(PageApiHandler, WithShares):  # type: ignore[misc]
    @answers
    async def post(self, console_id: str, share_id: str) -> None:
        await self.grant(console_id)
        self.send(await self.shares.revoke(console_id, share_id, "the console's owner"))


class JoinHandler(PageApiHandler, WithShares):  # type: ignore[misc]
    """The viewer's page: trade the share link's token for a viewer secret, then read the
    console's status with it."""

    @answers
    async def post(self, console_id: str) -> None:
        body = self.json_object()
        share, secret = await self.shares.join(console_id, body.get("token"),
                                               self.request.remote_ip or "")
        _, grant = await self.shares.page_status(console_id, secret)
        self.send(self.status(grant, session=secret, share=share.id, mode=share.mode), 201)

    @answers
    async def get(self, console_id: str) -> None:
        share, grant = await self.shares.page_status(console_id,
                                                     self.request.headers.get(VIEWER_HEADER, ""))
        self.send(self.status(grant, share=share.id, mode=share.mode))


def routes(cs: dict[str, Any], page: dict[str, Any]) -> list[tuple]:
    """*cs*: what WithShares takes; *page*: what the page's handlers take besides."""
    uuid = r"([0-9a-f-]{36})"
    return [
        (rf"/api/v1/consoles/{uuid}/shares", SharesApiHandler, cs),
        (rf"/api/v1/consoles/{uuid}/shares/{uuid}", ShareApiHandler, cs),
        (rf"/console/{uuid}/shares", PageSharesHandler, {**cs, **page}),
        (rf"/console/{uuid}/shares/{uuid}/revoke", PageRevokeHandler, {**cs, **page}),
        (rf"/console/{uuid}/join", JoinHandler, {**cs, **page}),
    ]
