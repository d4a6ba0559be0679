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
from .store.sql import StoreUnavailable
from .web.app import make_app

log = logging.getLogger(__name__)


def build(settings: Settings) -> Consoles:
    consoles = Consoles(settings, open_grant_store(settings), load_agents(settings),
                        guacamole=open_guacamole_db(settings))
    add_readiness_checks(consoles)
    return consoles


def add_readiness_checks(consoles: Consoles) -> None:
    """What /readyz asks: some guacd accepts connections, the databases answer."""
    settings = consoles.settings

    async def guacd() -> str | None:
        for host, port in settings.guacd:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
                writer.close()
                return None
            except (OSError, asyncio.TimeoutError):
                continue
        return "no guacd accepts connections"

    async def grant_store() -> str | None:
        try:
            await asyncio.to_thread(consoles.store.get, "00000000-0000-0000-0000-000000000000")
        except StoreUnavailable as e:
            return str(e)
        return None
    consoles.readiness.update(guacd=guacd, grant_store=grant_store)
    if consoles.recordings.enabled:
        consoles.recordings.prepare()

        async def recordings() -> str | None:
            return await asyncio.to_thread(consoles.recordings.check)
        consoles.readiness["recordings"] = recordings
    if consoles.guacamole is not None:
        guacamole = consoles.guacamole

        async def guacamole_db() -> str | None:
            try:
                await asyncio.to_thread(lambda: guacamole.url.connect().close())
            except StoreUnavailable as e:
                return str(e)
            return None
        consoles.readiness["guacamole_db"] = guacamole_db


async def run(settings: Settings, consoles: Consoles | None = None,
              on_ready: Callable[[Consoles], None] | None = None, http: bool = True) -> None:
    """Serve until SIGINT or SIGTERM: the HTTP side (unless *http* is off, as for
    ``guacbridge worker``), the sweeper, and the broker consumer when an AMQP URL is set.
    On the signal: stop accepting, let jobs in flight finish, close live tunnels."""
    consoles = consoles or build(settings)
    server = None
    if http:
        server = tornado.httpserver.HTTPServer(make_app(consoles), xheaders=False,
                                               max_body_size=64 * 1024)
        host, port = settings.listen
        server.listen(port, address=host)
        log.info("guacbridge listening on %s:%d, public URL %s, guacd %s", host, port,
                 settings.base_url, ", ".join(f"{h}:{p}" for h, p in settings.guacd))
    sweeper = asyncio.ensure_future(consoles.sweep_forever())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    stop_broker = None
    if settings.amqp_url:
        from . import broker
        stop_broker = broker.run_with(consoles, loop)
    if on_ready:
        on_ready(consoles)
    await stopping.wait()
    log.info("shutting down")
    if server is not None:
        server.stop()
    if stop_broker is not None:
        await asyncio.to_thread(stop_broker)   # its jobs need this loop to finish
    sweeper.cancel()
    consoles.stop_all("the console service is shutting down")
    await asyncio.sleep(0.2)   # let close frames and end records go out
