"""The owner's tunnel ends after ``idle_timeout`` seconds without key or mouse input, with a
warning ``idle_warning`` seconds before that the page shows (input in between cancels it).

One timer per tunnel, re-armed only when it fires, never a task: an idle console should cost
little, and the hot path only writes :attr:`IdleWatch.last_input`.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .. import protocol

# guacbridge's own `msg` code, not a Guacamole status (guacamole-common-js hands `msg` to
# Client.onmsg, and html/notices.js takes it from there): the tunnel ends for inactivity in
# args[0] seconds unless a key or the mouse is used. Guacamole's own codes are small numbers
# (1: user joined, 2: user left).
MSG_IDLE_WARNING = 0x4701
# The instructions from the browser that count as a person's input (the tunnel's hot path
# tests a message's start, then each instruction after a ";", against these).
INPUT = (b"3.key,", b"5.mouse,", b"5.touch,")
INPUT_INSIDE = tuple(b";" + opcode for opcode in INPUT)


def warning(left: int) -> str:
    """The page's warning that the tunnel ends in *left* seconds, as an instruction."""
    return protocol.encode("msg", MSG_IDLE_WARNING, left,
                           f"The console closes in {left} s unless you use the keyboard or"
                           " mouse.")


class IdleWatch:
    def __init__(self, timeout: float, warning: float, warn: Callable[[int], None],
                 expire: Callable[[str], None]) -> None:
        """*warn* is called with the seconds left, once per quiet spell; *expire* with the
        reason the console ends."""
        self.timeout = timeout
        self.warning = warning
        self.warn = warn
        self.expire = expire
        self.last_input = time.monotonic()     # the tunnel writes it on each input
        self._warned_for: float | None = None  # the input time the last warning counted from
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Count from now (the tunnel being up)."""
        self.last_input = time.monotonic()
        self._check()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        timeout, warning = self.timeout, self.warning
        last = self.last_input
        idle = time.monotonic() - last
        loop = asyncio.get_running_loop()
        if idle < timeout - warning:
            self._timer = loop.call_later(timeout - warning - idle, self._check)
            return
        if idle < timeout:
            if self._warned_for != last:
                self._warned_for = last
                self.warn(round(timeout - idle))
            self._timer = loop.call_later(timeout - idle, self._check)
            return
        self._timer = None
        self.expire(f"no keyboard or mouse input for {timeout:g} s")
