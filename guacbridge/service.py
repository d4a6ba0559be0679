"""Assembles the running service from Settings: grant store, agents, core, HTTP server.

``guacbridge serve`` and ``guacbridge demo`` both run through :func:`run`; tests start the
same thing as a subprocess, the way an operator does.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import tornado.httpserver

from .agents import load_agents
from .config import Settings
from .consoles import Consoles
from .store import open_grant_store, open_guacamole_db
from .web.app import make_app

log = logging.getLogger(__name__)


def build(settings: Settings) -> Consoles:
    return Consoles(settings, open_grant_store(settings), load_agents(settings),
                    guacamole=open_guacamole_db(settings))


async def run(settings: Settings, consoles: Consoles | None = None,
              on_ready: Callable[[Consoles], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; then stop accepting and close live tunnels."""
    consoles = consoles or build(settings)
    server = tornado.httpserver.HTTPServer(make_app(consoles), xheaders=False,
                                           max_body_size=64 * 1024)
    host, port = settings.listen
    server.listen(port, address=host)
    sweeper = asyncio.ensure_future(consoles.sweep_forever())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    log.info("guacbridge listening on %s:%d, public URL %s, guacd %s", host, port,
             settings.base_url, ", ".join(f"{h}:{p}" for h, p in settings.guacd))
    if on_ready:
        on_ready(consoles)
    await stopping.wait()
    log.info("shutting down")
    server.stop()
    sweeper.cancel()
    consoles.stop_all("the console service is shutting down")
    await asyncio.sleep(0.2)   # let close frames and end records go out
