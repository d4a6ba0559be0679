"""Every token and password the tests hand out or use, and the check that none of them is
in any log file the test session wrote (our service's, guacd's, the databases'…).

Fixtures remember secrets as they make them: ``Service.api`` remembers the tokens in each
reply and the passwords in each request, the desktop and database fixtures their passwords.
A test with a secret of its own calls :func:`remember`. conftest runs :func:`find` after the
last test, once every server has stopped and flushed its log.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

SECRETS: set[str] = set()
MIN_LENGTH = 6          # shorter strings turn up by chance ("secret" is not one of ours)
_SECRET_FIELDS = {"password", "passphrase", "private-key", "token", "extra", "extra_token",
                  "session"}


def remember(*values: Any) -> None:
    for value in values:
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            SECRETS.add(value)


def remember_in(body: Any) -> None:
    """Secrets anywhere in a request or reply body: passwords, tokens, reconnect secrets."""
    if isinstance(body, dict):
        for name, value in body.items():
            if name in _SECRET_FIELDS:
                remember(value)
            else:
                remember_in(value)
    elif isinstance(body, list):
        for item in body:
            remember_in(item)


def _log_files(root: pathlib.Path) -> Iterator[pathlib.Path]:
    for path in root.rglob("*"):
        name = path.name.lower()
        if path.is_file() and (name.endswith((".log", ".err")) or name.startswith("log")):
            yield path


def find(root: pathlib.Path) -> list[str]:
    """'file: secret…' for each remembered secret found in a log under *root*."""
    found = []
    for path in _log_files(root):
        text = path.read_bytes().decode("utf-8", "replace")
        for secret in SECRETS:
            if secret in text:
                found.append(f"{path}: {secret[:3]}… (line: "
                             f"{next(l for l in text.splitlines() if secret in l)[:200]!r})")
    return found
