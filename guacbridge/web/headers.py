"""Security headers on every response, whichever handler (or Tornado itself) wrote it.

An output transform sees each response's first chunk, so 404s, errors, static files and
WebSocket upgrades get the same headers as the API. A handler's own value wins: the console
page sets a Content-Security-Policy that lets its scripts run; everything else gets one that
lets nothing run, be framed or submit anywhere.
"""
from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.web

from ..config import Settings

NOTHING_RUNS = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none';"
                " form-action 'none'")
HSTS = "max-age=31536000"      # one year: only sent when the public URL or the request is https


def defaults(settings: Settings) -> tuple[tuple[str, str], ...]:
    headers = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
               ("X-Frame-Options", "DENY"), ("Content-Security-Policy", NOTHING_RUNS),
               ("Cross-Origin-Opener-Policy", "same-origin")]
    if settings.base_url.startswith("https://"):
        headers.append(("Strict-Transport-Security", HSTS))
    return tuple(headers)


class SecurityHeaders(tornado.web.OutputTransform):
    defaults: tuple[tuple[str, str], ...] = ()      # set per application by transform()

    def __init__(self, request: tornado.httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        headers = self.defaults
        if request.protocol == "https":       # served over TLS here, whatever the public URL
            headers = (*headers, ("Strict-Transport-Security", HSTS))
        self.headers = headers

    def transform_first_chunk(self, status_code: int, headers: tornado.httputil.HTTPHeaders,
                              chunk: bytes, finishing: bool) -> tuple[int, Any, bytes]:
        for name, value in self.headers:
            if name not in headers:
                headers[name] = value
        return status_code, headers, chunk


def transform(settings: Settings) -> type[SecurityHeaders]:
    """What ``Application(transforms=[…])`` wants: a class, made with each request."""
    return type("SecurityHeaders", (SecurityHeaders,), {"defaults": defaults(settings)})
