"""Request logging that never shows a query string (tokens travel in them) nor the legacy
route's key and password (they travel in its path)."""
from __future__ import annotations

import logging
from types import TracebackType

import tornado.httputil
import tornado.web

from ..logs import scrub

access_log = logging.getLogger("guacbridge.access")
app_log = logging.getLogger("guacbridge.web")


def summary(request: tornado.httputil.HTTPServerRequest) -> str:
    return f"{request.method} {redact(request.path)} ({request.remote_ip})"


def redact(path: str) -> str:
    """The legacy agent route carries a key and a password in its path."""
    return scrub(path)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One access-log line per request, by path only."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    metrics = getattr(handler, "metrics", None)
    if metrics is not None:
        metrics.requests.labels(type(handler).__name__, request.method,
                                str(status)).inc()
    access_log.log(level, "%d %s %s %s %.1fms", status, request.method, redact(request.path),
                   request.remote_ip, 1000.0 * request.request_time())


class RedactedLogging:
    """Replaces Tornado's exception log, which prints the whole URI."""

    request: tornado.httputil.HTTPServerRequest      # the handler's, which this is mixed into

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        request = self.request
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                app_log.warning("%d %s: %s", value.status_code, summary(request),
                                value.log_message % value.args if value.args else
                                value.log_message)
        else:
            app_log.error("uncaught exception in %s", summary(request),
                          exc_info=value)     # its traceback is tb
