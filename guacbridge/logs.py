"""Logging: human-readable lines by default, JSON lines on request (``log_format = "json"``),
and the console id on every line written while serving a console.

The id travels in a context variable: the tunnel and the core set it once they know which
console they serve, and asyncio carries it into the tasks they start.
"""
from __future__ import annotations

import contextvars
import json
import logging
import time

console_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("console_id",
                                                                        default=None)


class _ConsoleId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "console_id"):
            record.console_id = console_id.get()
        return True


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "console_id", None)
        return f"{line} [console {cid}]" if cid and cid not in record.getMessage() else line


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        cid = getattr(record, "console_id", None)
        if cid:
            entry["console_id"] = cid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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
