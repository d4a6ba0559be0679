"""Connection secrets at rest: the key ring that seals a grant's guacd parameters.

The grant stores keep a console's parameters (passwords, private keys, passphrases and the
rest) only as ``gb1:<key id>:<base64 of nonce + AES-256-GCM ciphertext>``, with the console
id as associated data, so that a sealed blob copied into another row does not open. The
ring's first key seals; every key in it opens, which makes rotation: add a new key first,
restart, ``guacbridge rekey``, then remove the old key. Messages name key ids and console
ids, never key bytes or parameters.

Not here: what the stores do with the blob (``store/sql.py``), and tokens, which are hashed,
not encrypted (``grants.py``).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import pathlib
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

FORMAT = "gb1"                       # the blob's version tag
KEY_FILE_NAME = "secret.key"         # the generated key file in data_dir (SQLite only)
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_NONCE = 12


class SecretsError(Exception):
    """A sealed blob cannot be opened, or no usable key is configured. The message names
    the console and the key id and says what to do; it never holds a key or a secret."""


@dataclasses.dataclass(frozen=True)
class SecretKey:
    id: str
    key: bytes = dataclasses.field(repr=False)


def parse_key(text: str) -> SecretKey:
    """``<id>:<base64 of 32 random bytes>``, as ``guacbridge newkey`` prints it."""
    key_id, sep, encoded = str(text).strip().partition(":")
    if not sep or not _KEY_ID.match(key_id):
        raise ValueError("a secret key is <id>:<base64 of 32 bytes>, the id of letters,"
                         " digits, '.', '_' or '-' (make one with: guacbridge newkey)")
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"secret key {key_id!r} is not valid base64") from None
    if len(key) != 32:
        raise ValueError(f"secret key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
    return SecretKey(key_id, key)


def new_key(key_id: str | None = None) -> str:
    """A fresh key line; the default id carries the date, so that rotations sort."""
    key_id = key_id or f"k{time.strftime('%Y%m%d', time.gmtime())}{secrets.token_hex(2)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def read_key_file(path: pathlib.Path) -> list[SecretKey]:
    """One key per line (the first seals); blank lines and ``#`` comments are skipped."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError as e:
        raise SecretsError(f"cannot read the secret key file {path}: {e.strerror}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                keys.append(parse_key(line))
            except ValueError as e:
                raise SecretsError(f"{path}, line {number}: {e}") from None
    if not keys:
        raise SecretsError(f"the secret key file {path} holds no key")
    return keys


def load_or_create(path: pathlib.Path) -> KeyRing:
    """The key file of a single instance, made (mode 0600) at the first start. Two
    processes starting at once agree: the file appears whole or not at all (a hard link)."""
    path = pathlib.Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write("# guacbridge's key for connection secrets at rest (first line"
                        " seals). Keep it with the database's backups, apart from them.\n")
                f.write(new_key() + "\n")
            try:
                os.link(temporary, path)
                log.info("made a new secret key file %s", path)
            except FileExistsError:
                pass                       # another process made it first: use theirs
        finally:
            temporary.unlink()
    return KeyRing(read_key_file(path), str(path))


class KeyRing:
    """Keys by id; the first seals, all open."""

    def __init__(self, keys: Sequence[SecretKey], source: str) -> None:
        if not keys:
            raise SecretsError(f"{source}: no secret key")
        ids = [k.id for k in keys]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise SecretsError(f"{source}: key id(s) used twice: {', '.join(doubled)}")
        self.source = source
        self.current = keys[0]
        self._ciphers = {k.id: AESGCM(k.key) for k in keys}
        self._legacy_seen: set[str] = set()

    def __repr__(self) -> str:
        return f"KeyRing({', '.join(self._ciphers)} from {self.source})"

    @property
    def ids(self) -> list[str]:
        return list(self._ciphers)

    def seal(self, console_id: str, params: dict[str, Any]) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._ciphers[self.current.id].encrypt(
            nonce, json.dumps(params).encode(), _associated(console_id))
        return f"{FORMAT}:{self.current.id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, console_id: str, blob: str) -> dict[str, Any]:
        if blob.startswith("{"):
            # Written before secrets were sealed: read it; `guacbridge rekey` seals it.
            if console_id not in self._legacy_seen and len(self._legacy_seen) < 10000:
                self._legacy_seen.add(console_id)
                log.warning("console %s: its parameters are stored unsealed (written by an"
                            " older version); run `guacbridge rekey` to seal them", console_id)
            return json.loads(blob)
        version, _, rest = blob.partition(":")
        key_id, _, encoded = rest.partition(":")
        if version != FORMAT or not encoded:
            raise SecretsError(f"console {console_id}: its stored parameters are in an"
                               f" unknown format")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretsError(
                f"console {console_id}: its secrets are sealed with key {key_id!r}, which is"
                f" not configured (keys: {', '.join(self._ciphers)}); add that key back,"
                f" or close the console")
        try:
            raw = base64.b64decode(encoded)
            plain = cipher.decrypt(raw[:_NONCE], raw[_NONCE:], _associated(console_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretsError(
                f"console {console_id}: its secrets do not open with key {key_id!r} (a"
                f" different key under the same id, or the row was altered)") from None
        return json.loads(plain)

    def sealed_with_current(self, blob: str) -> bool:
        return blob.startswith(f"{FORMAT}:{self.current.id}:")


def _associated(console_id: str) -> bytes:
    return f"guacbridge console_grant.params {console_id}".encode()
