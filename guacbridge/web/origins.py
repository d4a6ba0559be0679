"""Which browser pages may open the tunnel: the service's own pages and the configured
``allowed_origins``; any other page is refused with a JSON 403 before the upgrade, so that
it cannot use a console link it got hold of. Clients that send no Origin (not browsers) are
not asked: their token is their authority."""
from __future__ import annotations

import json
from collections.abc import Collection

import tornado.web

from .. import config


def allowed(origin: str, request_url: str, configured: Collection[str]) -> bool:
    """Whether a page from *origin* may open the tunnel reached at *request_url*
    (``scheme://host`` as the browser asked for it)."""
    given: str | None
    own: str | None
    try:
        given = config.origin(origin)
        own = config.origin(request_url)
    except ValueError:          # "null" (a sandboxed frame, a file://), or garbage
        given = own = None
    return given is not None and (given == own or given in configured)


def refuse(handler: tornado.web.RequestHandler, origin: str) -> None:
    """Answer the refused *origin* with our JSON 403 (Tornado's own is a text one)."""
    handler.set_status(403)
    handler.set_header("Content-Type", "application/json; charset=utf-8")
    handler.finish(json.dumps({
        "result": False, "details": f"pages from {origin[:100]} may not open consoles"
        " here; the operator can allow that origin with allowed_origins"}))
