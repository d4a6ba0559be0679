"""Routes and the Tornado application: each handler is handed the parts it needs."""
from __future__ import annotations

from typing import TYPE_CHECKING

import tornado.web

from . import api, headers, legacy, page, recording, sessions, shares
from .access import log_request
from .tunnel import TunnelHandler

if TYPE_CHECKING:
    from ..service import Parts


def make_app(parts: Parts) -> tornado.web.Application:
    s = parts.settings
    c = {"consoles": parts.consoles, "settings": s, "metrics": parts.metrics}
    on_page = {**c, "sessions": parts.sessions, "connect_throttle": parts.connect_throttle}
    with_shares = {**c, "shares": parts.shares, "recordings": parts.recordings}
    creates = {**c, "create_throttle": parts.create_throttle}
    tunnel = {"consoles": parts.consoles, "sessions": parts.sessions, "live": parts.live,
              "pool": parts.pool, "shares": parts.shares, "metrics": parts.metrics,
              "settings": s, "drain": parts.drain, "connect_throttle": parts.connect_throttle,
              "recordings": parts.recordings, "targets": parts.targets}
    return tornado.web.Application(
        [
            (r"/api/v1/openapi.json", api.OpenApiHandler, c),
            (r"/api/v1/consoles", api.ConsolesHandler, creates),
            (r"/api/v1/consoles/([^/]+)", api.ConsoleHandler, c),
            (r"/api/v1/consoles/([^/]+)/extend", api.ExtendHandler, c),
            (r"/api/v1/consoles/([^/]+)/power", api.PowerHandler, {**c, "power": parts.power}),
            (r"/api/v1/consoles/([^/]+)/events", sessions.EventsHandler, c),
            (r"/api/v1/consoles/([^/]+)/screenshot", api.ScreenshotHandler,
             {**c, "screenshots": parts.screenshots}),
            (r"/api/v1/consoles/([^/]+)/output", api.OutputHandler,
             {**c, "serial": parts.serial}),
            (r"/api/v1/sessions", sessions.SessionsHandler, c),
            (r"/healthz", api.HealthHandler, c),
            (r"/readyz", api.ReadyHandler, {**c, "readiness": parts.readiness,
                                            "pool": parts.pool}),
            (r"/metrics", api.MetricsHandler, c),
            (r"/tunnel", TunnelHandler, tunnel),
            *recording.routes(with_shares),
            *shares.routes(with_shares, on_page),
            *page.routes(on_page, s.base_url, parts.power),
            *([(legacy.ROUTE, legacy.LegacyHandler, creates)] if s.legacy_keys else []),
        ],
        default_handler_class=api.NotFoundHandler, default_handler_args=c,
        log_function=log_request, websocket_ping_interval=None, xsrf_cookies=False,
        compress_response=False, transforms=[headers.transform(s)],
    )
