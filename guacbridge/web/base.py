"""The base of the handlers that answer JSON over the core: they are given the core, the
settings and the metrics when routed (the access log counts requests with them), their
replies are JSON that no cache keeps (a reply may hold a console URL), and an uncaught
exception is logged without the URI (access.py)."""
from __future__ import annotations

import tornado.web

from ..config import Settings
from ..consoles import Consoles
from ..metrics import Metrics
from .access import RedactedLogging


class JsonBase(RedactedLogging, tornado.web.RequestHandler):
    def initialize(self, consoles: Consoles, settings: Settings, metrics: Metrics) -> None:
        self.consoles = consoles
        self.config = settings
        self.metrics = metrics

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
