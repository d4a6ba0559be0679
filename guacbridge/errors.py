"""The one shape of an answer-worthy failure: an HTTP status and a ``details`` text that is
safe to show the caller (it names the problem and the way out, never a secret). The API turns
it into JSON, the broker into a dead-letter reason, the tunnel into a Guacamole status.
``status`` is HTTP's; Guacamole's statuses are :class:`guacbridge.status.Status`."""
from __future__ import annotations


class StatusError(Exception):
    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


class ConsoleError(StatusError):
    """What the API answers, the broker dead-letters, the tunnel reports."""
