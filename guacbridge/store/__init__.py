"""Persistence: grant stores (SQLite by default, MySQL when shared) behind
``guacbridge.grants.GrantStore``, and the guacamole sink's writer."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .. import keyring
from ..config import ConfigError, Settings
from ..errors import ConsoleError
from ..grants import GrantStore
from .guacamole_db import GuacamoleDb, GuacamoleOptions
from .shares import ShareStore
from .sql import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


async def call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store call off the event loop (they block on the database). A database that is
    down is a 503, not a crash; secrets that no configured key opens are a 500 saying which
    key (the operator must act)."""
    try:
        return await asyncio.to_thread(method, *args, **kwargs)
    except StoreUnavailable as e:
        raise ConsoleError(503, str(e)) from None
    except keyring.SecretsError as e:
        log.error("%s", e)
        raise ConsoleError(500, str(e)) from None


def open_grant_store(settings: Settings, need_keys: bool = True) -> GrantStore:
    """The grant store the settings ask for, with its secret key ring (``initdb`` alone
    may go without: it only creates tables)."""
    keys = key_ring(settings) if need_keys else None
    if settings.mysql_url:
        from .mysql import MysqlGrantStore
        return MysqlGrantStore(settings.mysql_url, keys)
    from .sqlite import SqliteGrantStore
    return SqliteGrantStore(settings.sqlite_path, keys)


def key_ring(settings: Settings) -> keyring.KeyRing:
    """The configured keys (``secret_keys`` first, then ``secret_key_file``'s). With
    neither, a single SQLite instance makes its own key file in data_dir; instances sharing
    MySQL must share their keys, so there they must be configured."""
    keys = list(settings.secret_keys)
    sources = ["secret_keys"] if keys else []
    try:
        if settings.secret_key_file is not None:
            keys += keyring.read_key_file(settings.secret_key_file)
            sources.append(str(settings.secret_key_file))
        if keys:
            return keyring.KeyRing(keys, " + ".join(sources))
        if settings.mysql_url:
            raise ConfigError(
                "the MySQL grant store is shared by instances, so they must share the key"
                " that seals connection secrets: set secret_keys (GUACBRIDGE_SECRET_KEYS) or"
                " secret_key_file (GUACBRIDGE_SECRET_KEY_FILE) to the same key on every"
                " instance; `guacbridge newkey` makes one")
        return keyring.load_or_create(settings.data_dir / keyring.KEY_FILE_NAME)
    except keyring.SecretsError as e:
        raise ConfigError(str(e)) from None


def open_share_store(grants: GrantStore) -> ShareStore:
    """Share links live in the grant store's database, on its connections."""
    return ShareStore(grants._db)  # type: ignore[attr-defined]


def open_guacamole_db(settings: Settings) -> GuacamoleDb | None:
    """The guacamole sink's writer, when GUACBRIDGE_GUACAMOLE_DB_URL is set."""
    if not settings.guacamole_db_url:
        return None
    return GuacamoleDb(settings.guacamole_db_url, GuacamoleOptions(
        web_url=settings.guacamole_url, group=settings.guacamole_group,
        user_group=settings.guacamole_user_group,
        missing_user=settings.guacamole_missing_user,
        guacd=settings.guacamole_guacd or settings.guacd[0],
        max_connections=settings.guacamole_max_connections))
