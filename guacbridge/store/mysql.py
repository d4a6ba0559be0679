"""MySQL/MariaDB grant store (``GUACBRIDGE_MYSQL_URL``): grants shared by several instances.

Each thread keeps its connection and pings it before use (reconnecting if it broke): a
restarted database costs the calls made while it was down, nothing more, and a call costs
one round trip more instead of a TCP connect and a login (~40 ms → ~1 ms per console). The
one-time consume stays a single conditional UPDATE, atomic across instances.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

from .. import resources
from ..keyring import KeyRing
from .sql import SqlGrantStore, StoreUnavailable


@dataclasses.dataclass(frozen=True)
class MysqlUrl:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> MysqlUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb") or not parts.path.strip("/"):
            raise ValueError("expected mysql://user:password@host:port/database")
        return cls(parts.hostname or "127.0.0.1", parts.port or 3306,
                   unquote(parts.username or ""), unquote(parts.password or ""),
                   parts.path.strip("/"))

    def __str__(self) -> str:   # for messages: never the password
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"

    def connect(self, autocommit: bool = True) -> pymysql.connections.Connection:
        try:
            return pymysql.connect(host=self.host, port=self.port, user=self.user,
                                   password=self.password, database=self.database,
                                   charset="utf8mb4", autocommit=autocommit,
                                   connect_timeout=5, read_timeout=30, write_timeout=30)
        except pymysql.err.OperationalError as e:
            raise StoreUnavailable(f"database {self} is not reachable ({e.args[0]})") from None


class _Connection:
    """pymysql behind the sqlite3-style ``execute(sql with ?, params) -> cursor``."""

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
        except pymysql.err.OperationalError as e:
            raise StoreUnavailable(f"the database connection failed ({e.args[0]})") from None
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        """One multi-row statement for an INSERT (pymysql batches its VALUES)."""
        cursor = self.conn.cursor()
        try:
            cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
        except pymysql.err.OperationalError as e:
            raise StoreUnavailable(f"the database connection failed ({e.args[0]})") from None
        return cursor


def run_script(conn: pymysql.connections.Connection, script: str) -> None:
    """Run a file of ``;``-separated statements (our DDL has no ``;`` or ``--`` inside a
    statement's text)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    with conn.cursor() as cursor:
        for statement in "\n".join(lines).split(";"):
            if statement.strip():
                cursor.execute(statement)


class MysqlGrantStore(SqlGrantStore):
    NULL_SAFE_EQ = "<=>"
    BEGIN = "START TRANSACTION"
    FOR_UPDATE = " FOR UPDATE SKIP LOCKED"   # sweepers on several instances share the work
    INTEGRITY_ERROR = pymysql.err.IntegrityError
    UPSERT_TUNNEL = (" ON DUPLICATE KEY UPDATE bytes_out = VALUES(bytes_out),"
                     " bytes_in = VALUES(bytes_in), seen_at = VALUES(seen_at)")

    def __init__(self, url: str, keys: KeyRing | None = None) -> None:
        """*keys* must be the same on every instance; without them only create_tables()
        works (what ``guacbridge initdb`` needs)."""
        self.url = MysqlUrl.parse(url)
        self.keys = keys
        self._local = threading.local()

    def create_tables(self) -> None:
        conn = self.url.connect()
        try:
            run_script(conn, resources.sql("mysql.sql"))
            with conn.cursor() as cursor:     # a database made by an older version
                cursor.execute("SELECT table_name, column_name FROM information_schema.columns"
                               " WHERE table_schema = DATABASE()")
                present: dict[str, set[str]] = {}
                for table, column in cursor.fetchall():
                    present.setdefault(table, set()).add(column)
                self.add_columns(cursor, "mysql", present)
        finally:
            conn.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[_Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.ping(reconnect=False)
            except pymysql.err.Error:
                with contextlib.suppress(pymysql.err.Error):
                    conn.close()
                conn = None
        if conn is None:
            conn = self._local.conn = self.url.connect()
        try:
            yield _Connection(conn)
        except BaseException:
            # A failed call may leave a transaction open or the link half-dead: start afresh.
            self._local.conn = None
            with contextlib.suppress(pymysql.err.Error):
                conn.close()
            raise
