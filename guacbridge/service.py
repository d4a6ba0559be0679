"""Assembles the running service from Settings, and runs it.

:func:`assemble` builds the parts (audit, events, metrics, recordings, the guacd pool, the
caps and throttles, the live-tunnel registry, the core, sessions, sweeper, shares) and hands
each its collaborators, so that nothing reaches through another part for a third;
:func:`build` adds the stores the settings name and the readiness checks. ``guacbridge serve``
and ``guacbridge demo`` both run through :func:`run`; tests start the same thing as a
subprocess, the way an operator does.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import tornado.httpserver
import tornado.iostream

from . import tls
from .agents import Agent, load_agents
from .audit import Audit
from .config import Settings
from .consoles import Consoles
from .events import ConsoleEvents
from .grants import GrantStore
from .guacamole_sink import GuacamoleSink
from .guacd_pool import GuacdPool
from .limits import ConsoleCaps, Throttle
from .live import LiveTunnels
from .metrics import Metrics
from .policy import Policy
from .power import Power
from .recordings import Recordings
from .screenshots import Screenshots
from .serial_bridge import Bridges
from .sessions import Sessions
from .shares import Shares
from .store import open_grant_store, open_guacamole_db, open_share_store
from .store.guacamole_db import GuacamoleDb
from .store.sql import StoreUnavailable
from .sweeper import Sweeper
from .targets import Targets
from .web.app import make_app
from .web.drain import Drain

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[str | None]]   # None when fine, else why not


@dataclasses.dataclass
class Parts:
    """One instance's parts, as :func:`assemble` wired them."""
    settings: Settings
    store: GrantStore
    audit: Audit
    events: ConsoleEvents
    metrics: Metrics
    recordings: Recordings
    pool: GuacdPool                 # the tunnels' way to guacd
    caps: ConsoleCaps
    live: LiveTunnels
    consoles: Consoles
    sessions: Sessions
    sweeper: Sweeper
    shares: Shares
    create_throttle: Throttle
    connect_throttle: Throttle
    drain: Drain
    policy: Policy                  # where consoles may go: the core and the tunnel judge
    power: Power                    # power beside the console, for those with the right
    targets: Targets                # where each new guacd connection of a console goes
    screenshots: Screenshots        # a console's screen now, as a PNG
    serial: Bridges                 # serial consoles' bridges to guacd and their output
    guacamole: GuacamoleDb | None = None
    readiness: dict[str, Check] = dataclasses.field(default_factory=dict)   # by name


def assemble(settings: Settings, store: GrantStore, agents: Mapping[str, Agent], *,
             clock: Callable[[], float] = time.time,
             guacamole: GuacamoleDb | None = None, policy: Policy | None = None) -> Parts:
    policy = policy or Policy.from_settings(settings)
    audit = Audit(store, settings.instance_name, clock)
    events = ConsoleEvents(audit)
    metrics = Metrics()
    events.add_listener(metrics.on_event)
    recordings = Recordings(settings)
    pool = GuacdPool(settings.guacd)
    metrics.watch_guacd_pool(pool)
    caps = ConsoleCaps(settings.limits_consoles_per_owner, settings.limits_consoles_per_target,
                       clock)
    events.add_listener(caps.on_event)
    live = LiveTunnels(store, audit, clock)
    metrics.live.set_function(live.total)
    sink = GuacamoleSink(guacamole, store, clock) if guacamole is not None else None
    power = Power(settings, store, agents, events, policy, metrics, clock)
    serial = Bridges(settings)
    events.add_listener(serial.on_event)
    consoles = Consoles(settings, store, agents, events=events, live=live, caps=caps,
                        recordings=recordings, metrics=metrics, policy=policy, power=power,
                        sink=sink, clock=clock)
    targets = Targets(settings, store, agents, events, policy, metrics, serial)
    shares = Shares(consoles, events, open_share_store(store))
    return Parts(
        settings=settings, store=store, audit=audit, events=events, metrics=metrics,
        recordings=recordings, pool=pool, caps=caps, live=live, consoles=consoles,
        sessions=Sessions(settings, store, consoles, live, events, audit, clock),
        sweeper=Sweeper(settings, store, consoles, events, recordings, sink, clock),
        shares=shares,
        create_throttle=Throttle("console creations", settings.limits_create_per_key,
                                 settings.limits_create_per_address),
        connect_throttle=Throttle("tunnel connects", None,
                                  settings.limits_connect_per_address),
        drain=Drain(), policy=policy, power=power, guacamole=guacamole,
        serial=serial, targets=targets,
        screenshots=Screenshots(pool, targets, shares.store, events,
                                settings.screenshots_timeout))


def _loop_name() -> str:
    return "uvloop's" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio's"


def build(settings: Settings) -> Parts:
    """The parts with the stores the settings name, and what /readyz asks."""
    parts = assemble(settings, open_grant_store(settings), load_agents(settings),
                     guacamole=open_guacamole_db(settings))
    add_readiness_checks(parts)
    return parts


def add_readiness_checks(parts: Parts) -> None:
    """What /readyz asks: some guacd of the pool is up, the databases answer. The database
    checks run in one thread of their own, whose kept connections they reuse: a probe every
    few seconds must not cost a connection and a login each time (nor queue behind the
    store's other calls)."""
    store = parts.store
    thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="guacbridge-readyz")

    async def in_thread(check: Callable[[], object]) -> str | None:
        try:
            await asyncio.get_running_loop().run_in_executor(thread, check)
        except StoreUnavailable as e:
            return str(e)
        return None

    ping = getattr(store, "ping", None) or functools.partial(
        store.get, "00000000-0000-0000-0000-000000000000")     # a store without ping()

    async def grant_store() -> str | None:
        return await in_thread(ping)
    parts.readiness.update(guacd=parts.pool.check, grant_store=grant_store)
    recordings = parts.recordings
    if recordings.enabled:
        recordings.prepare()

        async def recordings_dir() -> str | None:
            return await asyncio.to_thread(recordings.check)
        parts.readiness["recordings"] = recordings_dir
    guacamole = parts.guacamole
    if guacamole is not None:
        async def guacamole_db() -> str | None:
            return await in_thread(guacamole.ping)
        parts.readiness["guacamole_db"] = guacamole_db


class HttpServer(tornado.httpserver.HTTPServer):
    """Believes X-Forwarded-For, X-Real-IP and X-Forwarded-Proto only from the configured
    reverse proxies; any other client could write them to pass for someone else.

    Caps the connections open at once per client address (``connections_per_address``, 0:
    none), WebSocket tunnels included: a client holding hundreds of idle sockets would
    otherwise take the process's file descriptors from everyone else. Over the cap a new
    connection is closed at once, before a byte is read. Trusted proxies are exempt: behind
    one, every client shares its address. Tornado has no such count, so each address keeps
    its streams and the closed ones are dropped when counted again."""
    trusted_proxies: frozenset[str] = frozenset()
    connections_per_address = 0
    _SWEEP_EVERY = 1024              # accepts between sweeps of addresses not seen again

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self._open: dict[str, list[tornado.iostream.IOStream]] = {}   # by client address
        self._accepts = 0
        self._warned: set[str] = set()       # at the cap, and logged once

    def start_request(self, server_conn: object, request_conn):  # type: ignore[no-untyped-def]
        self.xheaders = request_conn.context.remote_ip in self.trusted_proxies
        return super().start_request(server_conn, request_conn)

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple) -> None:
        cap = self.connections_per_address
        host = address[0] if isinstance(address, tuple) and address else ""
        if cap and host not in self.trusted_proxies:
            self._accepts += 1
            if self._accepts % self._SWEEP_EVERY == 0:
                self._sweep()
            streams = [s for s in self._open.get(host, ()) if not s.closed()]
            if len(streams) >= cap:
                self._open[host] = streams
                if host not in self._warned:    # once until it is under the cap again
                    self._warned.add(host)
                    log.warning("%s holds %d open connections, the cap"
                                " (limits.connections_per_address): closing new ones",
                                host, len(streams))
                stream.close()
                return
            self._warned.discard(host)
            streams.append(stream)
            self._open[host] = streams
        super().handle_stream(stream, address)

    def _sweep(self) -> None:
        for host, streams in list(self._open.items()):
            streams = [s for s in streams if not s.closed()]
            if streams:
                self._open[host] = streams
            else:
                del self._open[host]


async def run(settings: Settings, parts: Parts | None = None,
              on_ready: Callable[[Consoles], None] | None = None, http: bool = True) -> None:
    """Serve until SIGINT or SIGTERM: the HTTP side (unless *http* is off, as for
    ``guacbridge worker``), the sweeper, and the broker consumer when an AMQP URL is set.

    On the signal: stop accepting connections at once, ask every live console page to move
    to a new tunnel (another instance, when one shares the port or the proxy and the grant
    store), let jobs in flight finish, wait up to ``drain_seconds`` for the tunnels to go,
    then close what is left. A second signal cuts the wait short."""
    parts = parts or build(settings)
    server = drain = None
    if http:
        app = make_app(parts)
        drain = parts.drain
        # Tornado's idle_connection_timeout is a deadline for a whole request head, counted
        # from when it starts waiting for one (at accept, then after each response): a
        # client trickling a header byte at a time is cut off at it, however "active".
        server = HttpServer(app, ssl_options=tls.server_context(settings),
                            max_body_size=64 * 1024,
                            idle_connection_timeout=settings.limits_header_timeout,
                            body_timeout=settings.limits_body_timeout,
                            trusted_downstream=list(settings.trusted_proxies))
        server.trusted_proxies = frozenset(settings.trusted_proxies)
        server.connections_per_address = settings.limits_connections_per_address
        host, port = settings.listen
        server.listen(port, address=host, reuse_port=settings.reuse_port)
        log.info("guacbridge listening on %s:%d (%s), public URL %s, guacd %s, %s event loop",
                 host, port, "https" if settings.tls_cert else "http", settings.base_url,
                 ", ".join(f"{h}:{p}" for h, p in settings.guacd), _loop_name())
    sweeper = asyncio.ensure_future(parts.sweeper.forever())
    if http:
        parts.pool.start()       # tunnels and /readyz use its view of guacd
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    stop_broker = None
    if settings.amqp_url:
        from . import broker
        stop_broker = broker.run_with(parts, loop)
    if on_ready:
        on_ready(parts.consoles)
    await stopping.wait()
    stopping.clear()
    if server is not None:
        server.stop()

    async def shutting_down() -> str:
        return "shutting down: live consoles are moving to another instance"
    parts.readiness["accepting"] = shutting_down    # load balancers: send no one here
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
        if drain is not None and drain.close():
            log.info("closed the tunnels that had not moved")
    sweeper.cancel()
    parts.pool.stop()
    parts.live.stop_all("the console service is shutting down")
    await asyncio.sleep(0.2)   # let close frames and end records go out
