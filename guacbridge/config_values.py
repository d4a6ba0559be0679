"""How a setting's value is read: the parsers that the rows in config.py name.

Each takes what an operator wrote, a TOML value or an environment variable's text, and returns
the value guacbridge uses, or raises ValueError (or TypeError) saying what was expected; the
loader adds the setting's name to the message. Lists may come as TOML arrays or as
comma-separated text, because the environment has only text.
"""
from __future__ import annotations

import ipaddress
import pathlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import apikeys
from .apikeys import ApiKey
from .keyring import SecretKey, parse_key

Address = tuple[str, int]


def parse_address(value: str | tuple | list, default_host: str = "127.0.0.1") -> Address:
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


def optional_address(value: Any) -> Address | None:
    """An address, or None for an empty value (then a default applies elsewhere)."""
    return parse_address(value) if value else None


def _items(value: str | list | tuple) -> list:
    """A TOML array as it is, or comma-separated text split at its commas."""
    return value.split(",") if isinstance(value, str) else list(value)


def addresses(value: str | list) -> tuple[Address, ...]:
    """One or more addresses, none of them twice."""
    out = tuple(parse_address(item) for item in _items(value) if str(item).strip())
    if not out:
        raise ValueError("at least one host:port is needed")
    for i, address in enumerate(out):
        if address in out[:i]:   # a pool would count the one guacd twice: a typo, surely
            raise ValueError(f"{address[0]}:{address[1]} is listed twice")
    return out


def api_keys(value: str | Mapping | list) -> dict[str, ApiKey]:
    """``name:secret,…`` (every scope), a table of ``name = "secret"`` or of
    ``name = {hash = "sha256:…", scopes = […]}``, or a list of these merged in order."""
    if isinstance(value, list):
        merged: dict[str, ApiKey] = {}
        for part in value:
            merged.update(api_keys(part))
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


def secret_keys(value: str | list) -> tuple[SecretKey, ...]:
    """``id:base64`` keys; the first seals, all of them open."""
    return tuple(parse_key(k) for k in _items(value) if k.strip())


def origin(url: str) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin`` (no default port)."""
    split = urlsplit(str(url).strip())
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"expected an origin such as https://portal.example, got {url!r}")
    default = 443 if split.scheme == "https" else 80
    port = f":{split.port}" if split.port and split.port != default else ""
    return f"{split.scheme}://{bracket(split.hostname)}{port}"


def origins(value: str | list) -> tuple[str, ...]:
    """Origins, each without a path."""
    items = _items(value)
    for item in items:
        if urlsplit(str(item).strip()).path not in ("", "/"):
            raise ValueError(f"an origin has no path: {item!r}")
    return tuple(origin(item) for item in items if str(item).strip())


def hosts(value: str | list) -> tuple[str, ...]:
    """IP addresses (no names: a proxy is believed by its address)."""
    out = tuple(str(item).strip() for item in _items(value) if str(item).strip())
    for host in out:
        ipaddress.ip_address(host)      # a ValueError names the bad one
    return out


def url(value: str) -> str | None:
    """A URL with a scheme, or None for an empty value (the feature is off)."""
    value = str(value).strip()
    if not value:
        return None
    if not urlsplit(value).scheme:
        raise ValueError("expected a URL with a scheme")
    return value


def web_url(value: str) -> str:
    """An http(s) URL without its trailing slash, or empty."""
    value = str(value).strip()
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def path(value: Any) -> pathlib.Path | None:
    """A path, or None for an empty value."""
    text = str(value).strip()
    return pathlib.Path(text) if text else None


def count(value: Any) -> int:
    """A number of things where 0 means no limit."""
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 (no limit) or more")
    return n


def positive(value: Any) -> int:
    """A positive number of seconds."""
    n = int(value)
    if n <= 0:
        raise ValueError("must be a positive number of seconds")
    return n


def at_least_one(value: Any) -> int:
    """A number of things that must be one or more."""
    n = int(value)
    if n < 1:
        raise ValueError("must be 1 or more")
    return n


def seconds_or_zero(value: Any) -> float:
    """Seconds from 0 to an hour."""
    n = float(value)
    if not 0 <= n <= 3600:
        raise ValueError("must be from 0 to 3600 seconds")
    return n


def timeout(value: Any) -> float:
    """Seconds to wait for something, more than 0 and at most an hour."""
    n = float(value)
    if not 0 < n <= 3600:
        raise ValueError("must be more than 0 and at most 3600 seconds")
    return n


def boolean(value: Any) -> bool:
    """TOML's true/false, or 1/0, yes/no, on/off (any case) from the environment."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text[:20]!r}")


def one_of(*choices: str, fold_case: bool = False) -> Callable[[Any], str]:
    """A parser that accepts only *choices* (after lower-casing, with *fold_case*)."""
    def parse(value: Any) -> str:
        if fold_case:
            value = str(value).lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return str(value)
    return parse


def text(limit: int) -> Callable[[Any], str]:
    """A parser for text of at most *limit* characters, trimmed."""
    def parse(value: Any) -> str:
        out = str(value).strip()
        if len(out) > limit:
            raise ValueError(f"at most {limit} characters")
        return out
    return parse


def concurrency(value: int | str | Mapping) -> dict[str, int]:
    """Consumers per agent type: one number for all ("*"), or a table beside the default 2."""
    if isinstance(value, (int, str)):
        return {"*": int(value)}
    return {"*": 2, **{str(k): int(n) for k, n in value.items()}}


def seconds_list(value: list) -> tuple[float, ...]:
    """A list of delays in seconds."""
    return tuple(float(x) for x in value)


def names(value: str | list) -> tuple[str, ...]:
    """Names such as RabbitMQ users: a TOML array, or comma-separated text; trimmed."""
    return tuple(str(item).strip() for item in _items(value) if str(item).strip())


def string_table(value: Mapping) -> dict[str, str]:
    """A table of text values, e.g. location = "key"."""
    return {str(k): str(v) for k, v in dict(value).items()}


def table(value: Mapping) -> dict[str, Any]:
    """A TOML table kept as it is, read by whoever owns it (the agents)."""
    if not isinstance(value, Mapping):
        raise ValueError("expected a table")
    return dict(value)


def bracket(host: str) -> str:
    """An IPv6 address in brackets, as URLs write it."""
    return f"[{host}]" if ":" in host else host
