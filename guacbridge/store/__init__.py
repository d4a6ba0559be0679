"""Persistence: grant stores (SQLite by default, MySQL when shared) behind
``guacbridge.grants.GrantStore``, and the guacamole sink's writer."""
from __future__ import annotations

from ..config import Settings
from ..grants import GrantStore
from .guacamole_db import GuacamoleDb, GuacamoleOptions
from .shares import ShareStore


def open_grant_store(settings: Settings) -> GrantStore:
    """The grant store the settings ask for."""
    if settings.mysql_url:
        from .mysql import MysqlGrantStore
        return MysqlGrantStore(settings.mysql_url)
    from .sqlite import SqliteGrantStore
    return SqliteGrantStore(settings.sqlite_path)


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
