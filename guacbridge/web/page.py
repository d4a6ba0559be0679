"""The console page and its static files (``html/`` and guacamole-common-js from npm)."""
from __future__ import annotations

import tornado.web

from .. import resources
from .access import RedactedLogging

# The page loads nothing from elsewhere and runs no inline script.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
       " connect-src 'self'; font-src 'self'; base-uri 'none'; frame-ancestors 'none';"
       " form-action 'none'")


class PageHandler(RedactedLogging, tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def get(self, console_id: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish((resources.folder("html") / "console.html").read_bytes())


class StaticHandler(RedactedLogging, tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-cache")


def routes() -> list[tuple]:
    html = str(resources.folder("html"))
    js = resources.guacamole_js()
    return [
        (r"/console/([0-9a-f-]{36})", PageHandler),
        (r"/static/vendor/(guacamole-common\.js)", StaticHandler, {"path": str(js.parent)}),
        (r"/static/([\w.-]+\.(?:js|css|svg|png)|layouts/[\w.-]+\.json)", StaticHandler,
         {"path": html}),
    ]
