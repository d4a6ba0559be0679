"""API keys: who may call the REST API, and for what (scopes).

A key is a name, the SHA-256 of its secret and a set of scopes. The secret is never stored:
``guacbridge keys new`` prints it once, with the TOML block that holds only its hash. An
unsalted SHA-256 is enough here because the secrets are random (256 bits from ``secrets``):
nobody can guess one, so a slow, salted hash would buy nothing and would cost CPU on every
request. Secrets given in ``GUACBRIDGE_API_KEYS`` (``name:secret``) are hashed on loading and
get every scope, as before scopes existed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

# What each scope allows; "admin" allows everything, on every owner's consoles.
# "power" switches the target of a console opened with "power": true (on, off, reset...).
SCOPES = ("create", "read", "extend", "revoke", "power", "admin")
ALL = frozenset(SCOPES)
_PREFIX = "sha256:"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str                    # hex SHA-256 of the secret
    scopes: frozenset[str] = ALL

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def __repr__(self) -> str:
        return f"ApiKey({self.name!r}, scopes={sorted(self.scopes)})"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """256 random bits, URL-safe: fit for an Authorization header and a shell variable."""
    return secrets.token_urlsafe(32)


def from_secret(name: str, secret: str) -> ApiKey:
    """A ``name:secret`` key of GUACBRIDGE_API_KEYS: every scope."""
    return ApiKey(name, digest(secret), ALL)


def from_table(name: str, table: Mapping) -> ApiKey:
    """An ``[api_keys.<name>]`` table: ``hash = "sha256:<hex>"`` and ``scopes = [...]``."""
    unknown = sorted(set(table) - {"hash", "scopes"})
    if unknown:
        raise ValueError(f"api key {name!r}: unknown field(s) {', '.join(unknown)}")
    text = str(table.get("hash", ""))
    hex_digest = text[len(_PREFIX):].lower()
    if not text.startswith(_PREFIX) or len(hex_digest) != 64 or \
            any(c not in "0123456789abcdef" for c in hex_digest):
        raise ValueError(f"api key {name!r}: hash must be \"sha256:<64 hex digits>\""
                         " (guacbridge keys new prints one)")
    return ApiKey(name, hex_digest, parse_scopes(table.get("scopes"), name))


def parse_scopes(value: Iterable[str] | str | None, name: str = "") -> frozenset[str]:
    if value is None:
        raise ValueError(f"api key {name!r}: scopes is required, some of {', '.join(SCOPES)}")
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = frozenset(str(s).strip() for s in items if str(s).strip())
    unknown = sorted(scopes - ALL)
    if unknown or not scopes:
        raise ValueError(f"api key {name!r}: unknown scope(s) {', '.join(unknown) or '(none)'};"
                         f" use some of {', '.join(SCOPES)}")
    return scopes


def authenticate(keys: Mapping[str, ApiKey], secret: str) -> ApiKey | None:
    """The key whose secret this is. Every key is compared, in constant time, so the
    answer takes as long for the first key as for none."""
    presented = digest(secret)
    found = None
    for key in keys.values():
        if hmac.compare_digest(presented, key.digest):
            found = key
    return found


def toml_block(key: ApiKey) -> str:
    scopes = ", ".join(f'"{s}"' for s in SCOPES if s in key.scopes)
    return f'[api_keys.{key.name}]\nhash = "{_PREFIX}{key.digest}"\nscopes = [{scopes}]\n'
