"""Logging: human-readable lines by default, JSON lines on request (``log_format = "json"``),
and the console id on every line written while serving a console.

The id travels in a context variable: the tunnel and the core set it once they know which
console they serve, and asyncio carries it into the tasks they start.

Every line, whoever logs it (Tornado's own loggers too), passes :func:`scrub` last: what
looks like a secret in a query string, a bearer header or the legacy route's path is
replaced by ``***``, so that a message nobody thought about still cannot leak one.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time

console_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("console_id",
                                                                        default=None)


_SECRETS = (
    # name=value in query strings, fragments and forms: tokens, reconnect secrets, passwords
    (re.compile(r"(?i)\b(token|extra|session|password|passwd|pass|secret|ticket|key)"
                r"=[^&\s\"',;#)]+"), r"\1=***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    # the legacy route: /skey/<key>/… and /pass/<password>/…
    (re.compile(r"/(skey|pass)/[^/\s?#\"']+"), r"/\1/***"),
)


def scrub(text: str) -> str:
    """*text* with every secret-looking value replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _ConsoleId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "console_id"):
            record.console_id = console_id.get()
        return True


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "console_id", None)
        line = f"{line} [console {cid}]" if cid and cid not in record.getMessage() else line
        return scrub(line)


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                 "logger": record.name, "message": scrub(record.getMessage())}
        cid = getattr(record, "console_id", None)
        if cid:
            entry["console_id"] = cid
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_ConsoleId())
    handler.setFormatter(_Json() if fmt == "json" else
                         _Text("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("guacamole").setLevel(logging.WARNING)   # pyguacamole's chatter
