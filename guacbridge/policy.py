"""The target policy: which addresses, ports and protocols a console may reach.

guacd connects wherever it is told, so a console request that names a host is a way into
every network guacd can reach. The policy judges each target *as addresses*: a literal in any
spelling the C resolver accepts (``2130706433``, ``0177.0.0.1``, ``127.0.0.1.``, ``[::1]``,
``::ffff:127.0.0.1``) is normalised, and a name is resolved here, every address it gives
having to pass. The console keeps the name (so that a TLS or host-key check still sees it),
and the tunnel judges it again right before guacd is asked to connect, so that a DNS answer
changed after creation cannot move a console somewhere refused.

Refused whatever the lists say, unless ``policy.allow`` names them: loopback, link-local,
unspecified and multicast addresses (the built-in classes), and the addresses of guacbridge's
own dependencies (grant store, broker, guacd, Guacamole's database, its own listen address),
which only an ``allow`` entry with that port lifts. Then the lists, each of which may only
narrow: the global ``[policy]`` one, the agent's ``[policy.agents.NAME]``, and the owner's:
``[policy.api_keys.NAME]`` for an API key, ``[policy.producers.USER]`` for a broker
producer (owner ``amqp:USER``), ``[policy.legacy.LOCATION]`` for the legacy route (owner
``legacy:LOCATION``). An empty or missing list allows everything at its level.

A refusal is ConsoleError(403) whose details name the address and the rule, e.g.
``10.0.0.5:22 is outside policy.api_keys.portal.ports``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import ConsoleError

if TYPE_CHECKING:
    from .config import Settings

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PortRange = tuple[int, int]
Resolver = Callable[[str], Awaitable[list[str]]]     # a name -> its addresses, as text
RESOLVE_TIMEOUT = 10.0      # seconds a name may take to resolve
DEPENDENCY_TTL = 60.0       # seconds the dependencies' resolved addresses are kept

# The built-in classes: (networks, what they are). An IPv4-mapped IPv6 address is judged as
# its IPv4 address, so these need no ::ffff: twins.
CLASSES: tuple[tuple[tuple[Network, ...], str], ...] = tuple(
    (tuple(ipaddress.ip_network(n) for n in nets), what) for nets, what in (
        (("127.0.0.0/8", "::1/128"), "a loopback address"),
        (("169.254.0.0/16", "fe80::/10"), "a link-local address"),
        (("0.0.0.0/8", "::/128"), "an unspecified address"),
        (("224.0.0.0/4", "255.255.255.255/32", "ff00::/8"), "a multicast or broadcast address"),
    ))
LEVELS = ("agents", "api_keys", "producers", "legacy")     # the tables of narrower lists
_RULE_KEYS = ("networks", "ports", "protocols")
# What the C resolver (and so guacd) reads as an IPv4 address: 1 to 4 parts, each decimal,
# octal (leading 0) or hex (0x); inet_aton reads the same forms.
_INET_ATON = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


# -- reading the TOML ---------------------------------------------------------------------

def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [item for item in (part.strip() for part in value.split(",")) if item]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError("expected a list")


def parse_network(text: str) -> Network:
    """A CIDR network, or one address (a /32 or /128)."""
    try:
        network = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32") \
            from None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:     # judged as IPv4, so written so
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def networks(value: Any) -> tuple[Network, ...]:
    """CIDR networks, a TOML array or comma-separated text; empty: any address."""
    return tuple(parse_network(item) for item in _items(value))


def parse_ports(text: Any) -> PortRange:
    """A port (22) or a range ("5900-5999")."""
    if isinstance(text, int) and not isinstance(text, bool):
        low = high = text
    else:
        first, sep, last = str(text).strip().partition("-")
        try:
            low = int(first)
            high = int(last) if sep else low
        except ValueError:
            raise ValueError(f"{text!r} is not a port or a range such as 5900-5999") from None
    if not 0 < low <= high < 65536:
        raise ValueError(f"{text!r} is not a port range within 1-65535")
    return low, high


def ports(value: Any) -> tuple[PortRange, ...]:
    """Ports and port ranges; empty: any port."""
    return tuple(parse_ports(item) for item in _items(value))


def protocols(value: Any) -> frozenset[str]:
    """Protocol names; empty: every protocol."""
    from .parameters import ALLOWED
    out = frozenset(str(item).strip().lower() for item in _items(value))
    unknown = sorted(out - set(ALLOWED))
    if unknown:
        raise ValueError(f"unknown protocol(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(ALLOWED))}")
    return out


@dataclasses.dataclass(frozen=True)
class Allowed:
    """An ``allow`` entry: a network, and the ports it is for (empty: every port)."""
    network: Network
    ports: tuple[PortRange, ...] = ()

    def covers(self, address: IP, port: int, *, need_port: bool = False) -> bool:
        if address not in self.network:
            return False
        if not self.ports:
            return not need_port
        return any(low <= port <= high for low, high in self.ports)


def parse_allowed(text: Any) -> Allowed:
    """``127.0.0.1``, ``127.0.0.0/8``, ``127.0.0.1:5901``, ``10.0.0.0/8:5900-5999``,
    ``[::1]:22``, ``[fe80::/10]``."""
    text = str(text).strip()
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [v6 network]:ports, got {text!r}")
        return Allowed(parse_network(inner), (parse_ports(rest[1:]),) if rest else ())
    if text.count(":") == 1:
        net, _, port_text = text.partition(":")
        return Allowed(parse_network(net), (parse_ports(port_text),))
    return Allowed(parse_network(text))


def allowed(value: Any) -> tuple[Allowed, ...]:
    """The ``allow`` list: targets the built-in refusals let through after all."""
    return tuple(parse_allowed(item) for item in _items(value))


@dataclasses.dataclass(frozen=True)
class Rules:
    """One level's lists; an empty one allows everything at this level."""
    networks: tuple[Network, ...] = ()
    ports: tuple[PortRange, ...] = ()
    protocols: frozenset[str] = frozenset()


def rules_table(value: Any) -> dict[str, Rules]:
    """``[policy.agents]`` and the like: a table of name = {networks, ports, protocols}."""
    if not isinstance(value, Mapping):
        raise ValueError("expected a table of name = {networks, ports, protocols}")
    out: dict[str, Rules] = {}
    for name, lists in value.items():
        if not isinstance(lists, Mapping):
            raise ValueError(f"{name}: expected a table with networks, ports, protocols")
        unknown = sorted(set(lists) - set(_RULE_KEYS))
        if unknown:
            raise ValueError(f"{name}: unknown key(s) {', '.join(unknown)}; "
                             f"use {', '.join(_RULE_KEYS)}")
        try:
            out[str(name)] = Rules(networks(lists.get("networks", [])),
                                   ports(lists.get("ports", [])),
                                   protocols(lists.get("protocols", [])))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return out


# -- addresses ----------------------------------------------------------------------------

def literal(host: str) -> IP | None:
    """*host* as an address if it spells one (in any form the C resolver reads as an
    address), IPv4-mapped IPv6 as its IPv4 address; None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    address: IP | None = None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if _INET_ATON.match(text):
            try:
                address = ipaddress.IPv4Address(socket.inet_aton(text))
            except OSError:
                address = None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).partition("%")[0])
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _unmap(address: IP) -> IP:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def show(address: IP, port: int) -> str:
    """``10.0.0.5:22`` or ``[2001:db8::5]:22``."""
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


# Threads of its own: a slow DNS server must not hold up the grant store's calls, which use
# the loop's default executor.
_RESOLVING = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="guacbridge-dns")


async def system_resolver(name: str) -> list[str]:
    """The name's addresses through getaddrinfo, in a thread (never on the event loop),
    within RESOLVE_TIMEOUT."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.run_in_executor(
        _RESOLVING, functools.partial(socket.getaddrinfo, name, None,
                                      type=socket.SOCK_STREAM)), RESOLVE_TIMEOUT)
    return [str(info[4][0]) for info in infos]


class Unresolvable(Exception):
    """A name gave no address; *temporary* when trying again may help."""

    def __init__(self, name: str, why: str, temporary: bool) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name
        self.why = why
        self.temporary = temporary


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A part guacbridge itself talks to; consoles must not be pointed at it."""
    host: str
    port: int
    what: str            # "the grant store (guacbridge.mysql_url)"


def dependencies(settings: Settings) -> tuple[Dependency, ...]:
    """Where the settings say guacbridge's own parts are."""
    deps: list[Dependency] = []

    def url(value: str | None, what: str, default_ports: Mapping[str, int]) -> None:
        if not value:
            return
        split = urlsplit(value)
        try:
            port = split.port
        except ValueError:
            port = None
        scheme = split.scheme.partition("+")[0]
        port = port or default_ports.get(scheme)
        if split.hostname and port:
            deps.append(Dependency(split.hostname, port, what))
    url(settings.mysql_url, "the grant store (guacbridge.mysql_url)", {"mysql": 3306})
    url(settings.amqp_url, "the broker (guacbridge.amqp_url)", {"amqp": 5672, "amqps": 5671})
    url(settings.guacamole_db_url, "Guacamole's database (guacamole.db_url)",
        {"mysql": 3306, "postgresql": 5432, "postgres": 5432})
    for host, port in settings.guacd:
        deps.append(Dependency(host, port, "guacd (guacbridge.guacd)"))
    if settings.guacamole_guacd:
        deps.append(Dependency(*settings.guacamole_guacd, "guacd (guacamole.guacd)"))
    host, port = settings.listen
    what = "guacbridge itself (guacbridge.listen)"
    if host in ("", "0.0.0.0", "::"):       # every address of this machine
        deps.append(Dependency("127.0.0.1", port, what))
        deps.append(Dependency("::1", port, what))
        deps.append(Dependency(socket.gethostname(), port, what))
    else:
        deps.append(Dependency(host, port, what))
    return tuple(deps)


# -- the judge ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Judged:
    """A target that passed: its parameters (literal spellings normalised) and the key the
    per-target cap counts (the first address, normalised, and the port)."""
    params: dict[str, str]
    key: str


class Policy:
    """Judges targets; built once from the settings by :meth:`from_settings`."""

    def __init__(self, rules: Rules = Rules(), *, allow: Iterable[Allowed] = (),
                 levels: Mapping[str, Mapping[str, Rules]] | None = None,
                 deps: Iterable[Dependency] = (), resolver: Resolver = system_resolver,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.allow = tuple(allow)
        self.levels = {level: dict((levels or {}).get(level, {})) for level in LEVELS}
        self.deps = tuple(deps)
        self.resolver = resolver
        self.clock = clock
        self._dep_addresses: list[tuple[IP, int, str]] = []
        self._deps_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver = system_resolver
                      ) -> Policy:
        return cls(Rules(settings.policy_networks, settings.policy_ports,
                         settings.policy_protocols),
                   allow=settings.policy_allow,
                   levels={"agents": settings.policy_agents,
                           "api_keys": settings.policy_api_keys,
                           "producers": settings.policy_producers,
                           "legacy": settings.policy_legacy},
                   deps=dependencies(settings), resolver=resolver)

    def owner_level(self, owner: str) -> tuple[str, Rules] | None:
        """The owner's own lists and their name in the TOML file, if it has any."""
        kind, sep, name = owner.partition(":")
        level, key = ("producers", name) if sep and kind == "amqp" else \
            ("legacy", name) if sep and kind == "legacy" else ("api_keys", owner)
        rules = self.levels[level].get(key)
        return (f"policy.{level}.{key}", rules) if rules is not None else None

    async def judge(self, owner: str, agent: str | None, protocol: str,
                    params: Mapping[str, str]) -> Judged:
        """Pass *params* (guacd's, for *protocol*) or raise ConsoleError: 403 naming the
        address and the rule, 400 for a name that does not resolve, 503 when the resolver
        failed for now. *agent* None (at connect time, where it is not known) skips the
        agent's lists."""
        levels: list[tuple[str, Rules]] = [("policy", self.rules)]
        if agent is not None and agent in self.levels["agents"]:
            levels.append((f"policy.agents.{agent}", self.levels["agents"][agent]))
        own = self.owner_level(owner)
        if own is not None:
            levels.append(own)
        for name, rules in levels:
            if rules.protocols and protocol not in rules.protocols:
                raise ConsoleError(403, f"protocol {protocol} is outside {name}.protocols "
                                        f"(allowed: {', '.join(sorted(rules.protocols))})")
        out = dict(params)
        hosts = [("hostname", "port")]
        if "dest-host" in params or "dest-port" in params:   # a VNC repeater's far end
            hosts.append(("dest-host", "dest-port"))
        key = ""
        for host_param, port_param in hosts:
            host = params.get(host_param, "")
            try:
                port = int(params.get(port_param, ""))
            except ValueError:
                raise ConsoleError(400, f"{host_param} needs {port_param}: a port number") \
                    from None
            if not host:
                raise ConsoleError(400, f"{port_param} needs {host_param}")
            addresses = await self._addresses(host)
            fixed = literal(host)
            if fixed is not None:
                out[host_param] = str(fixed)       # guacd gets the plain spelling
            await self._check(host, addresses, port, levels)
            if not key:
                key = show(addresses[0], port)
        return Judged(out, key)

    async def _addresses(self, host: str) -> list[IP]:
        fixed = literal(host)
        if fixed is not None:
            return [fixed]
        name = host.strip()
        if name.startswith("[") or ":" in name:
            raise ConsoleError(400, f"{host[:100]!r} is neither an address nor a host name")
        try:
            found = await self.resolver(name)
        except TimeoutError:
            raise ConsoleError(503, f"resolving {name} took longer than "
                                    f"{RESOLVE_TIMEOUT:g} s; try again") from None
        except socket.gaierror as e:
            temporary = e.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None))
            if temporary:
                raise ConsoleError(503, f"{name} cannot be resolved now ({e.strerror}); "
                                        "try again") from None
            raise ConsoleError(400, f"{name} does not resolve ({e.strerror}): give an address"
                                    " or a name guacbridge can resolve") from None
        except OSError as e:
            raise ConsoleError(503, f"{name} cannot be resolved now ({e}); try again") \
                from None
        addresses = sorted({_unmap(ipaddress.ip_address(a.partition("%")[0]))
                            for a in found}, key=lambda a: (a.version, int(a)))
        if not addresses:
            raise ConsoleError(400, f"{name} resolves to no address")
        return addresses

    async def _check(self, host: str, addresses: list[IP], port: int,
                     levels: list[tuple[str, Rules]]) -> None:
        """Every address must pass every rule."""
        deps = await self._dependencies()
        for address in addresses:
            shown = show(address, port)
            if literal(host) is None:
                shown = f"{host} ({shown})"
            for nets, what in CLASSES:
                if any(address in net for net in nets if net.version == address.version) \
                        and not any(a.covers(address, port) for a in self.allow):
                    raise ConsoleError(403, f"{shown} is {what}, refused unless policy.allow"
                                            " lists it")
            for dep_address, dep_port, what in deps:
                if (dep_address, dep_port) == (address, port) and not any(
                        a.covers(address, port, need_port=True) for a in self.allow):
                    raise ConsoleError(403, f"{shown} is {what}, refused unless policy.allow"
                                            " lists that address with its port")
            for name, rules in levels:
                if rules.networks and not any(address in net for net in rules.networks
                                              if net.version == address.version):
                    raise ConsoleError(403, f"{shown} is outside {name}.networks")
                if rules.ports and not any(lo <= port <= hi for lo, hi in rules.ports):
                    raise ConsoleError(403, f"{shown} is outside {name}.ports")

    async def _dependencies(self) -> list[tuple[IP, int, str]]:
        """The dependencies as addresses, names resolved at most every DEPENDENCY_TTL s (a
        dependency whose name does not resolve now is left out until it does)."""
        now = self.clock()
        if self._deps_at is not None and now - self._deps_at < DEPENDENCY_TTL:
            return self._dep_addresses
        async def addresses(dep: Dependency) -> list[tuple[IP, int, str]]:
            fixed = literal(dep.host)
            if fixed is not None:
                return [(fixed, dep.port, dep.what)]
            try:
                found = await self.resolver(dep.host)
            except (OSError, TimeoutError):
                return []
            return [(_unmap(ipaddress.ip_address(a.partition("%")[0])), dep.port, dep.what)
                    for a in found]
        resolved = await asyncio.gather(*(addresses(dep) for dep in self.deps))
        out = [each for found in resolved for each in found]
        self._dep_addresses, self._deps_at = out, now
        return out
