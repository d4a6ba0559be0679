"""Routes and the Tornado application."""
from __future__ import annotations

import tornado.web

from ..consoles import Consoles
from ..limits import Throttle
from ..shares import Shares
from ..store import open_share_store
from . import api, headers, legacy, page, recording, sessions, shares
from .access import log_request
from .drain import Drain
from .tunnel import TunnelHandler


def make_app(consoles: Consoles, sharing: Shares | None = None) -> tornado.web.Application:
    c = {"consoles": consoles}
    s = consoles.settings
    sharing = sharing or Shares(consoles, open_share_store(consoles.store))
    return tornado.web.Application(
        [
            (r"/api/v1/openapi.json", api.OpenApiHandler, c),
            (r"/api/v1/consoles", api.ConsolesHandler, c),
            (r"/api/v1/consoles/([^/]+)", api.ConsoleHandler, c),
            (r"/api/v1/consoles/([^/]+)/extend", api.ExtendHandler, c),
            (r"/api/v1/consoles/([^/]+)/events", sessions.EventsHandler, c),
            (r"/api/v1/sessions", sessions.SessionsHandler, c),
            (r"/healthz", api.HealthHandler, c),
            (r"/readyz", api.ReadyHandler, c),
            (r"/metrics", api.MetricsHandler, c),
            (r"/tunnel", TunnelHandler, {**c, "shares": sharing}),
            *recording.routes(consoles, sharing),
            *shares.routes(consoles, sharing),
            *page.routes(consoles),
            *([(legacy.ROUTE, legacy.LegacyHandler, c)] if consoles.settings.legacy_keys
              else []),
        ],
        default_handler_class=api.NotFoundHandler, default_handler_args=c,
        log_function=log_request, websocket_ping_interval=None, xsrf_cookies=False,
        compress_response=False, drain=Drain(), transforms=[headers.transform(s)],
        # Rate limits, per application (limits.py): what the handlers check.
        create_throttle=Throttle("console creations", s.limits_create_per_key,
                                 s.limits_create_per_address),
        connect_throttle=Throttle("tunnel connects", None, s.limits_connect_per_address),
    )
