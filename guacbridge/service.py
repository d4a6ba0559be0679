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

from . import tls
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
    """What /readyz asks: some guacd of the pool is up, the databases answer."""
    async def grant_store() -> str | None:
        try:
            await asyncio.to_thread(consoles.store.get, "00000000-0000-0000-0000-000000000000")
        except StoreUnavailable as e:
            return str(e)
        return None
    consoles.readiness.update(guacd=consoles.guacd_pool.check, grant_store=grant_store)
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


class HttpServer(tornado.httpserver.HTTPServer):
    """Believes X-Forwarded-For, X-Real-IP and X-Forwarded-Proto only from the configured
    reverse proxies; any other client could write them to pass for someone else."""
    trusted_proxies: frozenset[str] = frozenset()

    def start_request(self, server_conn: object, request_conn):  # type: ignore[no-untyped-def]
        self.xheaders = request_conn.context.remote_ip in self.trusted_proxies
        return super().start_request(server_conn, request_conn)


async def run(settings: Settings, consoles: Consoles | None = None,
              on_ready: Callable[[Consoles], None] | None = None, http: bool = True) -> None:
    """Serve until SIGINT or SIGTERM: the HTTP side (unless *http* is off, as for
    ``guacbridge worker``), the sweeper, and the broker consumer when an AMQP URL is set.

    On the signal: stop accepting connections at once, ask every live console page to move
    to a new tunnel (another instance, when one shares the port or the proxy and the grant
    store), let jobs in flight finish, wait up to ``drain_seconds`` for the tunnels to go,
    then close what is left. A second signal cuts the wait short."""
    consoles = consoles or build(settings)
    server = drain = None
    if http:
        app = make_app(consoles)
        drain = app.settings["drain"]
        server = HttpServer(app, ssl_options=tls.server_context(settings),
                            max_body_size=64 * 1024,
                            trusted_downstream=list(settings.trusted_proxies))
        server.trusted_proxies = frozenset(settings.trusted_proxies)
        host, port = settings.listen
        server.listen(port, address=host, reuse_port=settings.reuse_port)
        log.info("guacbridge listening on %s:%d (%s), public URL %s, guacd %s", host, port,
                 "https" if settings.tls_cert else "http", settings.base_url,
                 ", ".join(f"{h}:{p}" for h, p in settings.guacd))
    sweeper = asyncio.ensure_future(consoles.sweep_forever())
    if http:
        consoles.guacd_pool.start()       # tunnels and /readyz use its view of guacd
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
    stopping.clear()
    if server is not None:
        server.stop()

    async def shutting_down() -> str:
        return "shutting down: live consoles are moving to another instance"
    consoles.readiness["accepting"] = shutting_down    # load balancers: send no one here
    drained = None
    if drain is not None:
        asked = drain.announce("The console service is restarting.")
        log.info("shutting down: not accepting connections; %d live tunnel(s) asked to move,"
                 " waiting up to %g s", asked, settings.drain_seconds)
        drained = asyncio.ensure_future(drain.wait(settings.drain_seconds))
    else:
        log.info("shutting down")
    if stop_broker is not None:
        await asyncio.to_thread(stop_broker)   # its jobs need this loop to finish
    if drained is not None:
        again = asyncio.ensure_future(stopping.wait())     # a second signal: no more waiting
        await asyncio.wait([drained, again], return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        again.cancel()
        if drain.close():
            log.info("closed the tunnels that had not moved")
    sweeper.cancel()
    consoles.guacd_pool.stop()
    consoles.stop_all("the console service is shutting down")
    await asyncio.sleep(0.2)   # let close frames and end records go out
