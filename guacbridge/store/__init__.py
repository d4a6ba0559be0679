"""Persistence: grant stores (SQLite by default) behind ``guacbridge.grants.GrantStore``."""
from __future__ import annotations

from ..config import Settings
from ..grants import GrantStore


def open_grant_store(settings: Settings) -> GrantStore:
    """The grant store the settings ask for."""
    if settings.mysql_url:
        raise NotImplementedError("the MySQL grant store is not built yet; unset GUACBRIDGE_MYSQL_URL")
    from .sqlite import SqliteGrantStore
    return SqliteGrantStore(settings.sqlite_path)
