"""Guacamole's status codes, each with the HTTP status and the WebSocket close code that go
with it: the one table the tunnel, guacd's client and the shares read.

A status travels three ways. guacd and the tunnel send it in an ``error`` instruction; the
tunnel closes the WebSocket with its close code and the decimal status as the close reason
(guacamole-common-js reads the reason first and falls back to the close code); an HTTP answer
would carry its HTTP status. The numbers are Apache Guacamole's (its ``GuacamoleStatus``, and
``Guacamole.Status.Code`` in guacamole-common-js, which the console page uses by name).

guacbridge's own notices to the page are not statuses and are not here: the restart
instruction (``RESTART_OPCODE``, web/drain.py) and the idle warning, a ``msg`` with
guacbridge's code ``MSG_IDLE_WARNING`` (the tunnel's); the page takes both in html/notices.js.
"""
from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """A Guacamole status; the member is its code, ``http`` and ``websocket`` its mappings.

    An IntEnum, so a member is the number on the wire (``str(int(status))`` is the close
    reason) and compares equal to the bare code guacd sends."""

    http: int
    websocket: int

    def __new__(cls, code: int, http: int, websocket: int) -> Status:
        member = int.__new__(cls, code)
        member._value_ = code
        member.http = http
        member.websocket = websocket
        return member

    SUCCESS = 0x0000, 200, 1000
    UNSUPPORTED = 0x0100, 501, 1011
    SERVER_ERROR = 0x0200, 500, 1011
    SERVER_BUSY = 0x0201, 503, 1008
    UPSTREAM_TIMEOUT = 0x0202, 504, 1011
    UPSTREAM_ERROR = 0x0203, 502, 1011
    RESOURCE_NOT_FOUND = 0x0204, 404, 1002
    RESOURCE_CONFLICT = 0x0205, 409, 1008
    RESOURCE_CLOSED = 0x0206, 404, 1002
    UPSTREAM_NOT_FOUND = 0x0207, 502, 1011
    UPSTREAM_UNAVAILABLE = 0x0208, 502, 1011
    SESSION_CONFLICT = 0x0209, 409, 1008
    SESSION_TIMEOUT = 0x020A, 408, 1002
    SESSION_CLOSED = 0x020B, 404, 1002
    CLIENT_BAD_REQUEST = 0x0300, 400, 1002
    CLIENT_UNAUTHORIZED = 0x0301, 403, 1008
    CLIENT_FORBIDDEN = 0x0303, 403, 1008
    CLIENT_TIMEOUT = 0x0308, 408, 1002
    CLIENT_OVERRUN = 0x030D, 413, 1009
    CLIENT_BAD_TYPE = 0x030F, 415, 1003
    CLIENT_TOO_MANY = 0x031D, 429, 1008

    @classmethod
    def of(cls, code: int) -> Status:
        """The member for *code*, or SERVER_ERROR for a code this table does not know (a
        newer guacd's, or a broken one's): something failed on the far side. guacd's own
        ``error`` instruction still reaches the browser as guacd sent it."""
        return _BY_CODE.get(code, cls.SERVER_ERROR)


_BY_CODE: dict[int, Status] = {status.value: status for status in Status}

