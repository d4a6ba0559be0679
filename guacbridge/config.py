"""The one settings object: a TOML file plus ``GUACBRIDGE_*`` environment overrides.

Each setting is declared once, as a field of `Settings` made by `setting(...)` from its row:
the TOML key, the environment variable if it has one, the default as an operator would write
it, the parser (config_values.py) and a line of description. The loader, the test of
deploy/guacbridge.example.toml and docs/settings.rst (``python -m guacbridge.config --rst``)
all read `TABLE`, the rows in field order.

Nothing else in guacbridge reads the environment. The TOML keys, the variable names and the
defaults are a contract that operators' scripts rely on: keep them; the environment wins over
the file, and an error names the setting by its attribute name.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import re
import socket
import sys
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from . import config_values as values
from . import policy
from .apikeys import ApiKey
from .config_values import Address, bracket, origin, parse_address
from .keyring import SecretKey
from .limits import Rate, parse_rate


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting and what was expected."""


TLS_LISTEN: Address = ("127.0.0.1", 8443)     # the listen default when a certificate is set


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting's row: where operators write it and how it is read."""

    toml: str                    # the dotted TOML key: "consoles.use_by"; "agents": a table
    env: str | None              # its GUACBRIDGE_* variable, or None: file only
    default: Any                 # as written in TOML; parsed like any value an operator gives
    parse: Callable[[Any], Any]  # text or TOML value -> the value; ValueError says why not
    doc: str                     # one line, for docs/settings.rst
    name: str = ""               # the Settings attribute, filled in from its field

    @property
    def table(self) -> str | None:
        """The TOML table holding the key, or None for a top-level table of its own."""
        return self.toml.rpartition(".")[0] or None

    @property
    def key(self) -> str:
        return self.toml.rpartition(".")[2]


def setting(toml: str, env: str | None, default: Any, parse: Callable[[Any], Any],
            doc: str) -> Any:
    """A Settings field whose default is *default* parsed, carrying its row as metadata."""
    row = Setting(toml, env, default, parse, doc)
    value = parse(default)
    if value.__hash__ is None:          # a dict: every Settings gets its own
        return dataclasses.field(default_factory=functools.partial(parse, default),
                                 metadata={"row": row})
    return dataclasses.field(default=value, metadata={"row": row})


@dataclasses.dataclass(frozen=True)
class Settings:
    """What guacbridge runs with: one field per setting, each declared with its row."""

    listen: Address = setting(
        "guacbridge.listen", "GUACBRIDGE_LISTEN", "127.0.0.1:8080", parse_address,
        "HTTP/WebSocket listen address, host:port; with tls_cert the default is 127.0.0.1:8443")
    public_url: str = setting(
        "guacbridge.public_url", "GUACBRIDGE_PUBLIC_URL", "", values.web_url,
        "Base URL put in replies: scheme, host, port, path prefix; empty: from listen")
    guacd: tuple[Address, ...] = setting(
        "guacbridge.guacd", "GUACBRIDGE_GUACD", "127.0.0.1:4822", values.addresses,
        "guacd as host:port; several, comma-separated, make a pool (none listed twice)")
    api_keys: Mapping[str, ApiKey] = setting(
        "guacbridge.api_keys", "GUACBRIDGE_API_KEYS", {}, values.api_keys,
        "API keys: name = secret (every scope; name:secret,... in the environment), merged "
        "with [api_keys.NAME] tables of hash and scopes; none: the API refuses every call")
    data_dir: pathlib.Path = setting(
        "guacbridge.data_dir", "GUACBRIDGE_DATA_DIR", "var", pathlib.Path,
        "Where the SQLite grant store (and its secret.key) lives")
    mysql_url: str | None = setting(
        "guacbridge.mysql_url", "GUACBRIDGE_MYSQL_URL", "", values.url,
        "A MySQL/MariaDB grant store shared by instances, mysql://user:pw@host:3306/db; "
        "empty: SQLite")
    guacamole_db_url: str | None = setting(
        "guacamole.db_url", "GUACBRIDGE_GUACAMOLE_DB_URL", "", values.url,
        "Guacamole's database, for the guacamole sink; empty: the sink is off")
    amqp_url: str | None = setting(
        "guacbridge.amqp_url", "GUACBRIDGE_AMQP_URL", "", values.url,
        "RabbitMQ, for console jobs; empty: no consumer")
    # Console lifetime: first use within use_by seconds, then a session of duration seconds,
    # extendable up to max_duration seconds after first use in total.
    use_by: int = setting(
        "consoles.use_by", None, 120, values.positive,
        "Seconds a new console URL waits for its first use")
    duration: int = setting(
        "consoles.duration", None, 7200, values.positive,
        "Session length in seconds from first use")
    max_duration: int = setting(
        "consoles.max_duration", None, 8 * 3600, values.positive,
        "Hard cap on a session in seconds, extensions included")
    extend_step: int = setting(
        "consoles.extend_step", None, 1800, values.positive,
        "Seconds the console page's Extend button adds")
    reconnect_window: int = setting(
        "consoles.reconnect_window", None, 120, values.positive,
        "Seconds a page may take to come back after a drop")
    handshake_timeout: float = setting(
        "guacbridge.handshake_timeout", None, 15.0, float,
        "Seconds guacd may take for its handshake")
    event_loop: str = setting(
        "guacbridge.event_loop", "GUACBRIDGE_EVENT_LOOP", "auto",
        values.one_of("auto", "uvloop", "asyncio", fold_case=True),
        "auto: uvloop's event loop when it is installed (less CPU per message), else "
        "asyncio's; uvloop (refuses to start without it) or asyncio to insist on one")
    log_level: str = setting(
        "guacbridge.log_level", "GUACBRIDGE_LOG_LEVEL", "info",
        values.one_of("debug", "info", "warning", "error", fold_case=True),
        "debug, info, warning or error")
    log_format: str = setting(
        "guacbridge.log_format", "GUACBRIDGE_LOG_FORMAT", "text",
        values.one_of("text", "json", fold_case=True),
        "text, or json: one object per line")
    # The guacamole sink (with guacamole.db_url): where Guacamole's web UI is, the connection
    # group for consoles, who gets READ, and what to do with unknown users.
    guacamole_url: str = setting(
        "guacamole.url", "GUACBRIDGE_GUACAMOLE_URL", "", values.web_url,
        "Guacamole's web UI, for the sink's URLs; needed with guacamole.db_url")
    guacamole_group: str = setting(
        "guacamole.group", None, "", str,
        "Connection group path for consoles, e.g. Consoles/Temp; empty: the root")
    guacamole_user_group: str = setting(
        "guacamole.user_group", None, "", str,
        "Grant READ to this user group instead of the user")
    guacamole_missing_user: str = setting(
        "guacamole.missing_user", None, "refuse", values.one_of("refuse", "create"),
        "refuse, or create: a user with no usable password")
    guacamole_guacd: Address | None = setting(
        "guacamole.guacd", None, "", values.optional_address,
        "guacd as Guacamole reaches it; empty: the first of guacd")
    guacamole_max_connections: int = setting(
        "guacamole.max_connections", None, 1, int,
        "Connection limit per console connection, and per user")
    # The broker: consumers per agent type ("*" for the rest), and the retry delays for jobs
    # that failed for a passing reason (then dead-lettered).
    broker_concurrency: Mapping[str, int] = setting(
        "broker.concurrency", None, 2, values.concurrency,
        "Consumers per agent type: a number, or a table such as {\"*\" = 2, ovirt = 4}")
    broker_prefetch: int = setting(
        "broker.prefetch", None, 16, values.at_least_one,
        "Jobs in flight per consumer; their replies may come in any order")
    broker_retry_delays: tuple[float, ...] = setting(
        "broker.retry_delays", None, [1.0, 5.0, 30.0], values.seconds_list,
        "Seconds between retries of jobs that failed for a passing reason")
    broker_admin_producers: tuple[str, ...] = setting(
        "broker.admin_producers", None, [], values.names,
        "RabbitMQ users whose extend and close jobs act on every owner's consoles")
    legacy_keys: Mapping[str, str] = setting(
        "legacy.keys", None, {}, values.string_table,
        "The legacy agent route's keys, location = key; none: the route is off")
    legacy_password_encoding: str = setting(
        "legacy.password_encoding", None, "url", values.one_of("url", "base64"),
        "How the legacy route encodes passwords: url or base64")
    agents: Mapping[str, Any] = setting(
        "agents", None, {}, values.table,
        "The agents' own settings: a table per agent type, e.g. [agents.ovirt.ams1]")
    # oVirt's serial consoles (serial_vmconsole.py): guacbridge's SSH key for the engines'
    # vmconsole proxies, and the known-hosts file their host keys are checked against.
    vmconsole_key_file: pathlib.Path | None = setting(
        "vmconsole.key_file", None, "", values.path,
        "Private key (unencrypted, OpenSSH or PEM) for oVirt's vmconsole proxy; an engine's"
        " vmconsole_key_file overrides it; empty: none")
    vmconsole_known_hosts: pathlib.Path | None = setting(
        "vmconsole.known_hosts", None, "", values.path,
        "OpenSSH known_hosts file vouching for the proxies' host keys (or their CA, with"
        " @cert-authority); empty: no oVirt serial console connects")
    vmconsole_user: str = setting(
        "vmconsole.user", None, "ovirt-vmconsole", values.text(64),
        "The SSH user the vmconsole proxy takes")
    vmconsole_timeout: int = setting(
        "vmconsole.timeout", None, 15, values.positive,
        "Seconds the proxy may take to answer and log guacbridge in (then 504)")
    # TLS and graceful restart: HTTPS/WSS when a certificate is set; the proxies whose
    # forwarded headers are believed; on SIGTERM, how long live consoles get to move.
    tls_cert: pathlib.Path | None = setting(
        "guacbridge.tls_cert", "GUACBRIDGE_TLS_CERT", "", values.path,
        "PEM certificate chain; set: HTTPS/WSS, and listen defaults to 127.0.0.1:8443")
    tls_key: pathlib.Path | None = setting(
        "guacbridge.tls_key", "GUACBRIDGE_TLS_KEY", "", values.path,
        "Its PEM key; empty: the key is in the tls_cert file")
    trusted_proxies: tuple[str, ...] = setting(
        "guacbridge.trusted_proxies", "GUACBRIDGE_TRUSTED_PROXIES", [], values.hosts,
        "IP addresses of reverse proxies whose X-Forwarded-For, X-Real-IP and "
        "X-Forwarded-Proto are believed")
    drain_seconds: float = setting(
        "guacbridge.drain_seconds", "GUACBRIDGE_DRAIN_SECONDS", 10.0, values.seconds_or_zero,
        "On SIGTERM, seconds (0 to 3600) live consoles get to move before the rest close")
    reuse_port: bool = setting(
        "guacbridge.reuse_port", "GUACBRIDGE_REUSE_PORT", False, values.boolean,
        "SO_REUSEPORT: a new instance may bind the port while the old one drains")
    # Secrets at rest and audit: the keys that seal connection secrets in the grant store,
    # this instance's name in events and sessions, how long closed consoles are kept.
    secret_keys: tuple[SecretKey, ...] = setting(
        "guacbridge.secret_keys", "GUACBRIDGE_SECRET_KEYS", [], values.secret_keys,
        "id:base64 keys sealing connection secrets at rest; the first seals, all open")
    secret_key_file: pathlib.Path | None = setting(
        "guacbridge.secret_key_file", "GUACBRIDGE_SECRET_KEY_FILE", "", values.path,
        "The same, one key a line; with neither and SQLite: data_dir/secret.key, made at "
        "first start; with mysql_url one of them is needed")
    instance: str = setting(
        "guacbridge.instance", "GUACBRIDGE_INSTANCE", "", values.text(64),
        "This instance's name in console events and sessions; empty: host name:listen port")
    audit_retention: int = setting(
        "audit.retention", None, 30 * 86400, values.positive,
        "Seconds closed consoles and their events are kept (30 days)")
    # Hardening: browser origins that may open the tunnel besides the page's own and the
    # public URL's; rate limits and caps of live consoles; the idle timeout and its warning.
    allowed_origins: tuple[str, ...] = setting(
        "guacbridge.allowed_origins", "GUACBRIDGE_ALLOWED_ORIGINS", [], values.origins,
        "Other pages' origins that may open the tunnel, e.g. https://portal.example")
    limits_create_per_key: Rate | None = setting(
        "limits.create_per_key", None, "120/minute", parse_rate,
        "Console creations per API key, COUNT/PERIOD; off: no limit")
    limits_create_per_address: Rate | None = setting(
        "limits.create_per_address", None, "300/minute", parse_rate,
        "Console creations per client address, bad keys included")
    limits_connect_per_address: Rate | None = setting(
        "limits.connect_per_address", None, "120/minute", parse_rate,
        "Tunnel connects per client address")
    limits_consoles_per_owner: int = setting(
        "limits.consoles_per_owner", None, 0, values.count,
        "Live consoles per owner (API key, producer); 0: no cap")
    limits_consoles_per_target: int = setting(
        "limits.consoles_per_target", None, 0, values.count,
        "Live consoles per target host:port; 0: no cap")
    # Slow and hostile clients, slow agents: how long a request's head and body may take to
    # arrive, open connections per client address (trusted_proxies exempt), agent calls.
    limits_header_timeout: int = setting(
        "limits.header_timeout", None, 20, values.positive,
        "Seconds a connection has to send a whole request head (and to start the next one)")
    limits_body_timeout: int = setting(
        "limits.body_timeout", None, 30, values.positive,
        "Seconds a request has to send its whole body once its head is in")
    limits_connections_per_address: int = setting(
        "limits.connections_per_address", None, 256, values.count,
        "Open connections per client address, WebSocket tunnels included; trusted_proxies "
        "exempt; 0: no cap")
    limits_agent_timeout: int = setting(
        "limits.agent_timeout", None, 30, values.positive,
        "Seconds an agent may take to resolve a target before the request answers 504")
    # Serial consoles (serial_bridge.py): where guacd reaches each connection's telnet
    # listener, how long it has to connect, how much of a line's output is kept.
    serial_listen_address: str = setting(
        "serial.listen_address", None, "127.0.0.1", values.text(253),
        "Address the serial bridge listens on for guacd (one connection per listener, "
        "ephemeral port): one guacd reaches and nobody else should")
    serial_accept_timeout: int = setting(
        "serial.accept_timeout", None, 15, values.positive,
        "Seconds guacd has to connect to a serial bridge's listener before it closes")
    serial_output_bytes: int = setting(
        "serial.output_bytes", None, 65536, values.positive,
        "Bytes of a serial console's last output kept for GET /api/v1/consoles/{id}/output")
    idle_timeout: int = setting(
        "consoles.idle_timeout", None, 1800, values.count,
        "End a console after this many seconds without key or mouse input; 0: never")
    idle_warning: int = setting(
        "consoles.idle_warning", None, 60, values.positive,
        "Seconds before that end at which the page is warned")
    # Session recording and live sharing.
    recordings_dir: pathlib.Path | None = setting(
        "recordings.dir", "GUACBRIDGE_RECORDINGS_DIR", "", values.path,
        "Where guacbridge reads session recordings; empty: recording is off")
    recordings_guacd_dir: str = setting(
        "recordings.guacd_dir", None, "", str,
        "The same directory as guacd sees it; empty: recordings.dir")
    recordings_policy: str = setting(
        "recordings.policy", None, "request", values.one_of("request", "always"),
        "request: consoles are recorded when asked to be; always: every console")
    recordings_verify_timeout: float = setting(
        "recordings.verify_timeout", None, 2.0, values.seconds_or_zero,
        "policy always: seconds a connection's first frame is held back waiting for guacd's"
        " recording file; without it the connection ends, its desktop never shown")
    recordings_retention: int = setting(
        "recordings.retention", None, 30 * 86400, values.positive,
        "Seconds a recording is kept (30 days)")
    shares_ttl: int = setting(
        "shares.ttl", None, 300, values.positive,
        "Seconds a share link waits for its first use")
    screenshots_timeout: float = setting(
        "screenshots.timeout", None, 10.0, values.timeout,
        "Seconds a screenshot waits for guacd's first complete frame; past it: 504")

    # The target policy (policy.py): where consoles may go. Loopback, link-local, unspecified
    # and multicast addresses and guacbridge's own dependencies are refused unless allow lists
    # them; the lists narrow, each level within the one above: [policy], then the agent's,
    # then the owner's (API key, broker producer, legacy location). Empty: no narrowing.
    policy_networks: tuple[Any, ...] = setting(
        "policy.networks", None, [], policy.networks,
        "Networks (CIDR) consoles may reach, e.g. [\"10.0.0.0/8\"]; empty: any address not "
        "refused by default")
    policy_ports: tuple[tuple[int, int], ...] = setting(
        "policy.ports", None, [], policy.ports,
        "Ports and port ranges consoles may reach, e.g. [22, \"5900-5999\"]; empty: any")
    policy_protocols: frozenset[str] = setting(
        "policy.protocols", None, [], policy.protocols,
        "Protocols consoles may use, e.g. [\"vnc\", \"rdp\"]; empty: every one")
    policy_allow: tuple[Any, ...] = setting(
        "policy.allow", "GUACBRIDGE_POLICY_ALLOW", [], policy.allowed,
        "Targets refused by default but allowed: network[:ports], e.g. 127.0.0.1:5901; a "
        "dependency's address only with its port")
    policy_agents: Mapping[str, Any] = setting(
        "policy.agents", None, {}, policy.rules_table,
        "Per agent: [policy.agents.NAME] with networks, ports, protocols (narrowing)")
    policy_api_keys: Mapping[str, Any] = setting(
        "policy.api_keys", None, {}, policy.rules_table,
        "Per API key: [policy.api_keys.NAME] with networks, ports, protocols (narrowing)")
    policy_producers: Mapping[str, Any] = setting(
        "policy.producers", None, {}, policy.rules_table,
        "Per broker producer (RabbitMQ user): [policy.producers.USER], the same keys")
    policy_legacy: Mapping[str, Any] = setting(
        "policy.legacy", None, {}, policy.rules_table,
        "Per legacy route location: [policy.legacy.LOCATION], the same keys")

    @property
    def base_url(self) -> str:
        """Public base URL without a trailing slash: scheme, host, port and path prefix."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.listen
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{bracket(host)}:{port}"

    @property
    def sqlite_path(self) -> pathlib.Path:
        return self.data_dir / "guacbridge.sqlite3"

    @property
    def instance_name(self) -> str:
        """Who holds a tunnel, in events and sessions: the host name and listen port."""
        return self.instance or f"{socket.gethostname()}:{self.listen[1]}"

    @property
    def origins(self) -> frozenset[str]:
        """The browser origins allowed on the tunnel besides the request's own."""
        return frozenset({origin(self.base_url), *self.allowed_origins})


TABLE: tuple[Setting, ...] = tuple(dataclasses.replace(f.metadata["row"], name=f.name)
                                   for f in dataclasses.fields(Settings))
_BY_NAME = {row.name: row for row in TABLE}
ENV = {row.env: row.name for row in TABLE if row.env}     # variable -> attribute name
# [consoles] has always ignored keys it does not know; the other tables refuse them.
_STRICT_TABLES = sorted({row.table for row in TABLE if row.table} - {"guacbridge", "consoles"})


def load(env: Mapping[str, str] | None = None, path: str | os.PathLike | None = None,
         **overrides: Any) -> Settings:
    """Build Settings from the TOML file (``GUACBRIDGE_CONFIG`` or *path*), then the
    environment, then explicit *overrides* (command-line options, by attribute name)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path or env.get("GUACBRIDGE_CONFIG")
    if path:
        raw.update(_read_toml(pathlib.Path(path)))
    for row in TABLE:
        if row.env and env.get(row.env, "") != "":
            # Keys from the file and the environment are both used (the environment's win
            # on a shared name); any other setting from the environment replaces the file's.
            raw[row.name] = [raw[row.name], env[row.env]] \
                if row.name == "api_keys" and row.name in raw else env[row.env]
    raw.update({k: x for k, x in overrides.items() if x is not None})
    return _build(raw)


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    """The file's values by attribute name; an unknown key keeps a name, for the error."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    # [guacbridge] has always also taken any setting by its attribute name.
    flat = dict(doc.get("guacbridge", {}))
    for row in TABLE:
        table = doc.get(row.table, {}) if row.table else doc
        if isinstance(table, Mapping) and row.key in table:
            flat[row.name] = table[row.key]
    for name in _STRICT_TABLES:
        for key, value in doc.get(name, {}).items():
            flat.setdefault(f"{name}_{key}", value)      # an unknown one: refused by _build
    if "api_keys" in doc:          # [api_keys.<name>] tables, beside [guacbridge] api_keys
        flat["api_keys"] = [flat["api_keys"], doc["api_keys"]] if "api_keys" in flat \
            else doc["api_keys"]
    return flat


def _build(raw: dict[str, Any]) -> Settings:
    unknown = sorted(set(raw) - set(_BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            parsed[name] = _BY_NAME[name].parse(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"setting {name!r}: {e}") from None
    if parsed.get("tls_cert") and "listen" not in parsed:
        parsed["listen"] = TLS_LISTEN
    settings = Settings(**parsed)
    # What involves several settings is checked here, once they are all known.
    if not settings.use_by > 0 or not 0 < settings.duration <= settings.max_duration:
        raise ConfigError("need use_by > 0 and 0 < duration <= max_duration (seconds)")
    if settings.tls_key and not settings.tls_cert:
        raise ConfigError("tls_key is set but tls_cert is not: set both, or neither")
    if settings.guacamole_db_url and not settings.guacamole_url:
        raise ConfigError("the guacamole sink needs guacamole.url: Guacamole's web UI address")
    if settings.idle_timeout and not 0 < settings.idle_warning < settings.idle_timeout:
        raise ConfigError("need 0 < idle_warning < idle_timeout (seconds), or idle_timeout = 0")
    return settings


def toml_value(value: Any) -> str:
    """*value* (a row's default) written as TOML, the way the docs show it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)              # TOML's basic strings escape as JSON does
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in value.items()) + "}"
    return repr(value)


def render_rst() -> str:
    """docs/settings.rst: every row as reST, so that the docs list what the code reads."""
    def text(s: str) -> str:                   # plain words: no reST markup by accident
        return re.sub(r"([\\`*_|])", r"\\\1", s)

    lines = [
        ".. Generated from guacbridge/config.py by ``python -m guacbridge.config --rst``;",
        "   a test fails when this file differs. Edit the rows there, not this file.",
        "",
        "Settings reference",
        "==================",
        "",
        "Every setting, its key in the TOML file (``GUACBRIDGE_CONFIG`` or ``--config``), its",
        "environment variable if it has one, and its default. The environment wins over the",
        "file. Error messages name a setting by the name in the first column.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Setting",
        "     - TOML key",
        "     - Environment",
        "     - Default",
        "     - Description",
    ]
    for row in TABLE:
        lines += [f"   * - ``{row.name}``",
                  f"     - ``{row.toml}``",
                  f"     - ``{row.env}``" if row.env else "     - (file only)",
                  f"     - ``{toml_value(row.default)}``",
                  f"     - {text(row.doc)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m guacbridge.config --rst``: print docs/settings.rst."""
    parser = argparse.ArgumentParser(prog="python -m guacbridge.config")
    parser.add_argument("--rst", action="store_true", required=True,
                        help="print the settings table as reStructuredText")
    parser.parse_args(argv)
    sys.stdout.write(render_rst())
    return 0


if __name__ == "__main__":
    sys.exit(main())
