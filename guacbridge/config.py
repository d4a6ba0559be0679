"""The one settings object: a TOML file plus ``GUACBRIDGE_*`` environment overrides.

Nothing else in guacbridge reads the environment. The variable names and defaults below are
a contract that operators' scripts rely on (DESIGN.md, "Configuration contract"); the
environment wins over the file.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib
import socket
import tomllib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .keyring import SecretKey, parse_key
from . import apikeys
from .apikeys import ApiKey
from .limits import Rate, parse_rate


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting and what was expected."""


Address = tuple[str, int]
TLS_LISTEN: Address = ("127.0.0.1", 8443)     # the listen default when a certificate is set


@dataclasses.dataclass(frozen=True)
class Settings:
    listen: Address = ("127.0.0.1", 8080)
    public_url: str = ""                      # derived from listen when empty
    guacd: tuple[Address, ...] = (("127.0.0.1", 4822),)
    api_keys: Mapping[str, ApiKey] = dataclasses.field(default_factory=dict)
    data_dir: pathlib.Path = pathlib.Path("var")
    mysql_url: str | None = None
    guacamole_db_url: str | None = None
    amqp_url: str | None = None
    # Console lifetime: first use within use_by seconds, then a session of duration seconds,
    # extendable up to max_duration seconds after first use in total.
    use_by: int = 120
    duration: int = 7200
    max_duration: int = 8 * 3600
    extend_step: int = 1800        # what the page's Extend button adds
    reconnect_window: int = 120    # how long a page may take to come back after a drop
    handshake_timeout: float = 15.0
    log_level: str = "info"
    log_format: str = "text"            # or "json": one object per line
    # The guacamole sink (GUACBRIDGE_GUACAMOLE_DB_URL): where Guacamole's web UI is, the
    # connection group path for consoles, who gets READ, and what to do with unknown users.
    guacamole_url: str = ""
    guacamole_group: str = ""
    guacamole_user_group: str = ""
    guacamole_missing_user: str = "refuse"
    guacamole_guacd: Address | None = None      # as Guacamole reaches guacd; default: ours
    guacamole_max_connections: int = 1
    # The broker: consumers per agent type ("*" for the rest), and the retry delays for
    # jobs that failed for a passing reason (then dead-lettered).
    broker_concurrency: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"*": 2})
    broker_retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    # The legacy agent route: off while there are no keys (location → key).
    legacy_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
    legacy_password_encoding: str = "url"
    agents: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # TLS and graceful restart (issue 7, items 1 and 7): HTTPS/WSS when a certificate is set
    # (then listen defaults to 127.0.0.1:8443); the proxies whose X-Forwarded-For/-Proto are
    # believed; on SIGTERM, how long live consoles get to move before the rest are closed;
    # SO_REUSEPORT, so that a new instance can bind the port while the old one drains.
    tls_cert: pathlib.Path | None = None
    tls_key: pathlib.Path | None = None       # default: the key is in the tls_cert file
    trusted_proxies: tuple[str, ...] = ()
    drain_seconds: float = 10.0
    reuse_port: bool = False
    # Secrets at rest and audit (issue 7, items 4 and 5): the keys that seal connection
    # secrets in the grant store (the first seals; none and SQLite: a key file made in
    # data_dir), this instance's name in events and sessions, and how long closed consoles
    # and their events are kept.
    secret_keys: tuple[SecretKey, ...] = ()
    secret_key_file: pathlib.Path | None = None
    instance: str = ""
    audit_retention: int = 30 * 86400
    # Hardening: API key scopes live in api_keys (apikeys.py). Browser origins that may open
    # the tunnel, besides the page's own and the public URL's. Rate limits and caps of live
    # consoles (limits.py; 0 or "off" = none). The tunnel ends after idle_timeout seconds
    # without key or mouse input (0 = never), warning the page idle_warning seconds before.
    allowed_origins: tuple[str, ...] = ()
    limits_create_per_key: Rate | None = Rate(120, 60.0)
    limits_create_per_address: Rate | None = Rate(300, 60.0)
    limits_connect_per_address: Rate | None = Rate(120, 60.0)
    limits_consoles_per_owner: int = 0
    limits_consoles_per_target: int = 0
    idle_timeout: int = 1800
    idle_warning: int = 60
    # Session recording and live sharing ([recordings], [shares]): where guacbridge reads
    # recordings (unset: recording is off), the same directory as guacd sees it (default: the
    # same path), whether consoles are recorded on request or always, how long files are kept;
    # how long a share link waits for its first use.
    recordings_dir: pathlib.Path | None = None
    recordings_guacd_dir: str = ""
    recordings_policy: str = "request"
    recordings_retention: int = 30 * 86400
    shares_ttl: int = 300

    @property
    def base_url(self) -> str:
        """Public base URL without a trailing slash: scheme, host, port and path prefix."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.listen
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{_bracket(host)}:{port}"

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


ENV = {
    "GUACBRIDGE_LISTEN": "listen",
    "GUACBRIDGE_PUBLIC_URL": "public_url",
    "GUACBRIDGE_GUACD": "guacd",
    "GUACBRIDGE_API_KEYS": "api_keys",
    "GUACBRIDGE_DATA_DIR": "data_dir",
    "GUACBRIDGE_MYSQL_URL": "mysql_url",
    "GUACBRIDGE_GUACAMOLE_DB_URL": "guacamole_db_url",
    "GUACBRIDGE_AMQP_URL": "amqp_url",
    "GUACBRIDGE_GUACAMOLE_URL": "guacamole_url",
    "GUACBRIDGE_LOG_LEVEL": "log_level",
    "GUACBRIDGE_LOG_FORMAT": "log_format",
    "GUACBRIDGE_TLS_CERT": "tls_cert",
    "GUACBRIDGE_TLS_KEY": "tls_key",
    "GUACBRIDGE_TRUSTED_PROXIES": "trusted_proxies",
    "GUACBRIDGE_DRAIN_SECONDS": "drain_seconds",
    "GUACBRIDGE_REUSE_PORT": "reuse_port",
    "GUACBRIDGE_SECRET_KEYS": "secret_keys",
    "GUACBRIDGE_SECRET_KEY_FILE": "secret_key_file",
    "GUACBRIDGE_INSTANCE": "instance",
    "GUACBRIDGE_ALLOWED_ORIGINS": "allowed_origins",
    "GUACBRIDGE_RECORDINGS_DIR": "recordings_dir",
}


def load(env: Mapping[str, str] | None = None, path: str | os.PathLike | None = None,
         **overrides: Any) -> Settings:
    """Build Settings from the TOML file (``GUACBRIDGE_CONFIG`` or *path*), then the
    environment, then explicit *overrides* (command-line options)."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path or env.get("GUACBRIDGE_CONFIG")
    if path:
        raw.update(_read_toml(pathlib.Path(path)))
    for var, field in ENV.items():
        if env.get(var, "") != "":
            # Keys from the file and the environment are both used (the environment's win
            # on a shared name); any other setting from the environment replaces the file's.
            raw[field] = [raw[field], env[var]] if field == "api_keys" and field in raw \
                else env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return _build(raw)


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    flat = dict(doc.get("guacbridge", {}))
    consoles = doc.get("consoles", {})
    for key in ("use_by", "duration", "max_duration", "extend_step", "reconnect_window",
                "idle_timeout", "idle_warning"):
        if key in consoles:
            flat[key] = consoles[key]
    for section in ("guacamole", "broker", "legacy", "audit", "limits", "recordings", "shares"):
        for key, value in doc.get(section, {}).items():
            flat[f"{section}_{key}"] = value
    if "agents" in doc:
        flat["agents"] = doc["agents"]
    if "api_keys" in doc:          # [api_keys.<name>] tables, beside [guacbridge] api_keys
        flat["api_keys"] = [flat["api_keys"], doc["api_keys"]] if "api_keys" in flat \
            else doc["api_keys"]
    return flat


def _build(raw: dict[str, Any]) -> Settings:
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        parse = _PARSERS.get(name)
        try:
            values[name] = parse(value) if parse else value
        except (TypeError, ValueError) as e:
            raise ConfigError(f"setting {name!r}: {e}") from None
    if values.get("tls_cert") and "listen" not in values:
        values["listen"] = TLS_LISTEN
    settings = Settings(**values)
    if not settings.use_by > 0 or not 0 < settings.duration <= settings.max_duration:
        raise ConfigError("need use_by > 0 and 0 < duration <= max_duration (seconds)")
    if settings.tls_key and not settings.tls_cert:
        raise ConfigError("tls_key is set but tls_cert is not: set both, or neither")
    if settings.guacamole_db_url and not settings.guacamole_url:
        raise ConfigError("the guacamole sink needs guacamole.url: Guacamole's web UI address")
    if settings.idle_timeout and not 0 < settings.idle_warning < settings.idle_timeout:
        raise ConfigError("need 0 < idle_warning < idle_timeout (seconds), or idle_timeout = 0")
    return settings


def parse_address(value: str | tuple, default_host: str = "127.0.0.1") -> Address:
    """``host:port``, ``[v6]:port`` or ``:port`` → (host, port)."""
    if isinstance(value, (tuple, list)):
        host, port = value
        return str(host), _port(port)
    text = str(value).strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"expected [host]:port, got {text!r}")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"expected host:port, got {text!r}")
    return host or default_host, _port(port)


def _port(value: Any) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return port


def _addresses(value: str | list) -> tuple[Address, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(parse_address(item) for item in items if str(item).strip())
    if not out:
        raise ValueError("at least one host:port is needed")
    for i, address in enumerate(out):
        if address in out[:i]:   # a pool would count the one guacd twice: a typo, surely
            raise ValueError(f"{address[0]}:{address[1]} is listed twice")
    return out


def _api_keys(value: str | Mapping | list) -> dict[str, ApiKey]:
    """``name:secret,…`` (every scope), a table of ``name = "secret"`` or of
    ``name = {hash = "sha256:…", scopes = […]}``, or a list of these merged in order."""
    if isinstance(value, list):
        merged: dict[str, ApiKey] = {}
        for part in value:
            merged.update(_api_keys(part))
        return merged
    if isinstance(value, Mapping):
        return {str(k): apikeys.from_table(str(k), v) if isinstance(v, Mapping)
                else apikeys.from_secret(str(k), str(v)) for k, v in value.items()}
    keys: dict[str, ApiKey] = {}
    for item in filter(None, (p.strip() for p in value.split(","))):
        name, sep, secret = item.partition(":")
        if not sep or not name or not secret:
            raise ValueError("API keys are name:secret pairs, comma-separated")
        keys[name] = apikeys.from_secret(name, secret)
    return keys


def origin(url: str) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin`` (no default port)."""
    split = urlsplit(str(url).strip())
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"expected an origin such as https://portal.example, got {url!r}")
    default = 443 if split.scheme == "https" else 80
    port = f":{split.port}" if split.port and split.port != default else ""
    return f"{split.scheme}://{_bracket(split.hostname)}{port}"


def _origins(value: str | list) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    for item in items:
        if urlsplit(str(item).strip()).path not in ("", "/"):
            raise ValueError(f"an origin has no path: {item!r}")
    return tuple(origin(item) for item in items if str(item).strip())


def _count(value: Any) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 (no limit) or more")
    return n


def _url(value: str) -> str | None:
    value = str(value).strip()
    if not value:
        return None
    if not urlsplit(value).scheme:
        raise ValueError("expected a URL with a scheme")
    return value


def _public_url(value: str) -> str:
    value = str(value).strip()
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _positive(value: Any) -> int:
    n = int(value)
    if n <= 0:
        raise ValueError("must be a positive number of seconds")
    return n


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return str(value)


def _path(value: Any) -> pathlib.Path | None:
    text = str(value).strip()
    return pathlib.Path(text) if text else None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text[:20]!r}")


def _hosts(value: str | list) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    hosts = tuple(str(item).strip() for item in items if str(item).strip())
    for host in hosts:
        ipaddress.ip_address(host)      # a ValueError names the bad one
    return hosts


def _seconds_or_zero(value: Any) -> float:
    n = float(value)
    if not 0 <= n <= 3600:
        raise ValueError("must be from 0 to 3600 seconds")
    return n


def _text(value: Any, limit: int) -> str:
    text = str(value).strip()
    if len(text) > limit:
        raise ValueError(f"at most {limit} characters")
    return text


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_PARSERS = {
    "listen": parse_address,
    "public_url": _public_url,
    "guacd": _addresses,
    "api_keys": _api_keys,
    "data_dir": pathlib.Path,
    "mysql_url": _url,
    "guacamole_db_url": _url,
    "amqp_url": _url,
    "use_by": _positive,
    "duration": _positive,
    "max_duration": _positive,
    "extend_step": _positive,
    "reconnect_window": _positive,
    "handshake_timeout": float,
    "log_level": lambda v: _choice(str(v).lower(), ("debug", "info", "warning", "error")),
    "log_format": lambda v: _choice(str(v).lower(), ("text", "json")),
    "guacamole_url": _public_url,
    "guacamole_missing_user": lambda v: _choice(v, ("refuse", "create")),
    "guacamole_guacd": lambda v: parse_address(v) if v else None,
    "guacamole_max_connections": int,
    "broker_concurrency": lambda v: {"*": int(v)} if isinstance(v, (int, str))
    else {"*": 2, **{str(k): int(n) for k, n in v.items()}},
    "broker_retry_delays": lambda v: tuple(float(x) for x in v),
    "legacy_keys": lambda v: {str(k): str(key) for k, key in dict(v).items()},
    "legacy_password_encoding": lambda v: _choice(v, ("url", "base64")),
    "tls_cert": _path,
    "tls_key": _path,
    "trusted_proxies": _hosts,
    "drain_seconds": _seconds_or_zero,
    "reuse_port": _bool,
    "secret_keys": lambda v: tuple(parse_key(k) for k in
                                   (v.split(",") if isinstance(v, str) else v) if k.strip()),
    "secret_key_file": lambda v: pathlib.Path(v) if str(v).strip() else None,
    "instance": lambda v: _text(v, 64),
    "audit_retention": _positive,
    "allowed_origins": _origins,
    "limits_create_per_key": parse_rate,
    "limits_create_per_address": parse_rate,
    "limits_connect_per_address": parse_rate,
    "limits_consoles_per_owner": _count,
    "limits_consoles_per_target": _count,
    "idle_timeout": _count,
    "idle_warning": _positive,
    "recordings_dir": lambda v: pathlib.Path(v) if str(v).strip() else None,
    "recordings_guacd_dir": str,
    "recordings_policy": lambda v: _choice(v, ("request", "always")),
    "recordings_retention": _positive,
    "shares_ttl": _positive,
}
