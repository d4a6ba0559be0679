"""Which event loop the service runs on: uvloop's when it is installed, else asyncio's.

uvloop (libuv under asyncio's interface) moves the same bytes for less CPU: the relay's
throughput rose by about 40 % on it (docs/performance.rst). It is optional — guacbridge is
the same service on either loop, and the tests run the tunnel on both — so it is used when
``pip install uvloop`` has put it beside guacbridge, and the ``guacbridge.event_loop``
setting can insist on one: ``uvloop`` (a missing uvloop is then an error at start, not a
quiet fallback) or ``asyncio``.
"""
from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def chosen(setting: str) -> str:
    """``uvloop`` or ``asyncio`` for the setting's ``auto``, ``uvloop`` or ``asyncio``."""
    if setting == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    if setting == "uvloop" and not uvloop_installed():
        raise SystemExit("guacbridge: event_loop = uvloop, but uvloop is not installed"
                         " (pip install uvloop, or event_loop = auto)")
    return setting


def factory(setting: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if chosen(setting) == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], setting: str) -> T:
    """``asyncio.run`` on the loop the setting chooses."""
    with asyncio.Runner(loop_factory=factory(setting)) as runner:
        return runner.run(main)
