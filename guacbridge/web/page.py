"""The console page, its static files (``html/`` and guacamole-common-js from npm) and the
small API the page itself calls, authorised by its reconnect secret, not by an API key."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import tornado.web

from .. import resources
from ..audit import Client
from ..grants import Grant
from ..limits import Throttle
from ..power import Power, waiting
from ..sessions import Sessions
from .access import RedactedLogging
from .api import JsonHandler, answers

SESSION_HEADER = "X-Console-Session"
WARN_BEFORE = 300   # seconds: when the page warns that the session is about to end

# The page loads nothing from elsewhere and runs no inline script or style; it connects to
# itself and to the tunnel (named too, for browsers whose 'self' leaves out ws: and wss:).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
       " connect-src 'self' {tunnel}; font-src 'self'; base-uri 'none';"
       " frame-ancestors 'none'; form-action 'none'")


def csp(base_url: str) -> str:
    """The page's policy, naming the public URL's WebSocket origin."""
    split = urlsplit(base_url)
    scheme = "wss" if split.scheme == "https" else "ws"
    return CSP.format(tunnel=f"{scheme}://{split.netloc}")


class PageHandler(RedactedLogging, tornado.web.RequestHandler):
    def initialize(self, csp: str) -> None:
        self.csp = csp

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")    # the rest: web/headers.py

    def get(self, console_id: str) -> None:
        self.set_header("Content-Security-Policy", self.csp)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish((resources.folder("html") / "console.html").read_bytes())


class StaticHandler(RedactedLogging, tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")


class PageApiHandler(JsonHandler):
    """The page's own calls: authorised by its reconnect secret (``sessions``); spending a
    token is throttled per address like a tunnel connect."""

    def initialize(self, sessions: Sessions, connect_throttle: Throttle,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.sessions = sessions
        self.throttle = connect_throttle

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")

    async def grant(self, console_id: str) -> Grant:
        return await self.sessions.page_grant(console_id,
                                              self.request.headers.get(SESSION_HEADER, ""))

    def status(self, grant: Grant, **extra: Any) -> dict[str, Any]:
        now = self.consoles.clock()
        return {"result": True, "details": None, "id": grant.id, "state": grant.state(now),
                "now": now, "deadline": grant.deadline, "max_deadline": grant.hard_deadline,
                "extend_step": self.config.extend_step, "warn_before": WARN_BEFORE,
                "protocol": grant.target.protocol, "power": grant.power,
                "waiting": waiting(grant), **extra}


class PageSessionHandler(PageApiHandler):
    @answers
    async def post(self, console_id: str) -> None:
        """Trade the one-time token (in the body, never in a URL) for a reconnect secret."""
        # Like a tunnel connect: it spends a token, so guessing is slowed per address.
        self.throttle.check_address(self.request.remote_ip)
        body = self.json_object()
        grant, secret = await self.sessions.open_page(
            console_id, body.get("token"), body.get("extra"),
            Client(self.request.remote_ip, self.request.headers.get("User-Agent")))
        self.send(self.status(grant, session=secret), 201)

    @answers
    async def get(self, console_id: str) -> None:
        self.send(self.status(await self.grant(console_id)))


class PageExtendHandler(PageApiHandler):
    @answers
    async def post(self, console_id: str) -> None:
        await self.grant(console_id)
        await self.consoles.extend(console_id, self.config.extend_step)
        self.send(self.status(await self.grant(console_id)))


class PageCloseHandler(PageApiHandler):
    @answers
    async def post(self, console_id: str) -> None:
        await self.grant(console_id)
        await self.consoles.close(console_id, "closed by the user")
        self.send(self.status(await self.grant(console_id)))


class PagePowerHandler(PageApiHandler):
    """The Power section: the target's state and actions, and an action pressed, for a
    console opened with ``"power": true`` (404 otherwise), by whoever holds its page."""

    def initialize(self, power: Power, **base: Any) -> None:  # type: ignore[override]
        super().initialize(**base)
        self.power = power

    @answers
    async def get(self, console_id: str) -> None:
        await self.grant(console_id)
        self.send(await self.power.state(console_id))

    @answers
    async def post(self, console_id: str) -> None:
        grant = await self.grant(console_id)
        action = self.json_object().get("action")
        by = f"the console page of {grant.user}" if grant.user else "the console page"
        self.send(await self.power.act(console_id, action, by=by), 202)


def routes(c: dict[str, Any], base_url: str, power: Power) -> list[tuple]:
    """*c*: what PageApiHandler takes; *power* for the Power section's calls."""
    html = str(resources.folder("html"))
    js = resources.guacamole_js()
    uuid = r"([0-9a-f-]{36})"
    return [
        (rf"/console/{uuid}", PageHandler, {"csp": csp(base_url)}),
        (rf"/console/{uuid}/session", PageSessionHandler, c),
        (rf"/console/{uuid}/extend", PageExtendHandler, c),
        (rf"/console/{uuid}/close", PageCloseHandler, c),
        (rf"/console/{uuid}/power", PagePowerHandler, {**c, "power": power}),
        (r"/static/vendor/(guacamole-common\.js)", StaticHandler, {"path": str(js.parent)}),
        (r"/static/([\w.-]+\.(?:js|css|svg|png)|layouts/[\w.-]+\.json)", StaticHandler,
         {"path": html}),
    ]
