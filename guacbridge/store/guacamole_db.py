"""The guacamole sink's writer: connections in Apache Guacamole's JDBC MySQL database.

A console becomes a row in ``guacamole_connection`` with its parameters, a READ permission
for the user (or a configured user group) and READ on every ancestor group, all in one
transaction, so Guacamole's web UI lists it ready to click. The row is tagged with the
console id in ``guacamole_connection_attribute`` (the table Guacamole leaves to extensions),
which is how it is found again for removal, even after a crash between our two databases.
Removing the connection removes its parameters and permissions (ON DELETE CASCADE) and
leaves history rows in place (their connection_id becomes NULL).
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import logging
import secrets
from collections.abc import Mapping

import pymysql

from .. import resources
from ..errors import StatusError
from .mysql import MysqlUrl, run_script
from .sql import StoreUnavailable

log = logging.getLogger(__name__)

CONSOLE_ATTRIBUTE = "guacbridge-console"
DATA_SOURCE = "mysql"
MAX_NAME = 128


class SinkRefused(StatusError):
    """The request cannot be served by this sink."""


@dataclasses.dataclass(frozen=True)
class GuacamoleOptions:
    web_url: str                      # the Guacamole web UI, e.g. https://host/guacamole
    group: str = ""                   # "Consoles/Temporary": a path of connection groups
    user_group: str = ""              # grant READ to this group instead of the user
    missing_user: str = "refuse"      # or "create" (with no usable password)
    guacd: tuple[str, int] | None = None
    max_connections: int | None = 1


def client_url(web_url: str, connection_id: int) -> str:
    """Guacamole's own link to a connection: ``#/client/`` + base64url(id NUL c NUL mysql)."""
    ident = base64.urlsafe_b64encode(f"{connection_id}\0c\0{DATA_SOURCE}".encode())
    return f"{web_url.rstrip('/')}/#/client/{ident.decode().rstrip('=')}"


class GuacamoleDb:
    def __init__(self, url: str, options: GuacamoleOptions) -> None:
        self.url = MysqlUrl.parse(url)
        self.options = options
        self._kept: pymysql.connections.Connection | None = None    # ping()'s, reused

    def ping(self) -> None:
        """For /readyz: one kept connection pings the database (a new one only when it
        broke), so that a probe every few seconds costs a round trip, not a login. Called
        from one thread at a time (the readiness checks'); StoreUnavailable if down."""
        if self._kept is not None:
            try:
                self._kept.ping(reconnect=False)
                return
            except pymysql.err.Error:
                with contextlib.suppress(pymysql.err.Error):
                    self._kept.close()
                self._kept = None
        self._kept = self.url.connect()

    def create_schema(self) -> None:
        """The compatible Guacamole schema, into an empty database (development, tests)."""
        conn = self.url.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW TABLES LIKE 'guacamole\\_%%'")
                if cursor.fetchone():
                    raise SinkRefused(409, f"{self.url} already has Guacamole tables")
            run_script(conn, resources.sql("guacamole-schema.sql"))
        finally:
            conn.close()

    def create_connection(self, console_id: str, name: str, protocol: str,
                          params: Mapping[str, str], user: str) -> int:
        """One transaction: the connection, its parameters, the tag, the permissions."""
        conn = self.url.connect(autocommit=False)
        try:
            with conn.cursor() as cur:
                entity = self._grantee(cur, user)
                parent = self._group(cur, entity)
                connection_id = self._insert_connection(cur, name, parent, protocol)
                cur.executemany(
                    "INSERT INTO guacamole_connection_parameter"
                    " (connection_id, parameter_name, parameter_value) VALUES (%s, %s, %s)",
                    [(connection_id, k, v) for k, v in params.items() if v != ""])
                cur.execute("INSERT INTO guacamole_connection_attribute"
                            " (connection_id, attribute_name, attribute_value)"
                            " VALUES (%s, %s, %s)", (connection_id, CONSOLE_ATTRIBUTE, console_id))
                self._grant_read(cur, entity, connection_id)
            conn.commit()
            return connection_id
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def remove_connection(self, console_id: str) -> int:
        """Delete the console's connection (if any); returns how many rows went."""
        conn = self.url.connect()
        try:
            with conn.cursor() as cur:
                return cur.execute(
                    "DELETE c FROM guacamole_connection c JOIN guacamole_connection_attribute a"
                    " ON a.connection_id = c.connection_id"
                    " WHERE a.attribute_name = %s AND a.attribute_value = %s",
                    (CONSOLE_ATTRIBUTE, console_id))
        finally:
            conn.close()

    # -- the steps of create_connection, each on the open transaction ------------------

    def _grantee(self, cur: pymysql.cursors.Cursor, user: str) -> int:
        """The entity that gets READ: the configured user group, or the user."""
        if self.options.user_group:
            cur.execute("SELECT entity_id FROM guacamole_entity WHERE type = 'USER_GROUP'"
                        " AND name = %s", (self.options.user_group,))
            row = cur.fetchone()
            if row is None:
                raise SinkRefused(500, f"the configured Guacamole user group "
                                       f"{self.options.user_group!r} does not exist")
            self._user_entity(cur, user)       # the user must exist (or be created) too
            return row[0]
        return self._user_entity(cur, user)

    def _user_entity(self, cur: pymysql.cursors.Cursor, user: str) -> int:
        cur.execute("SELECT entity_id FROM guacamole_entity WHERE type = 'USER' AND name = %s",
                    (user,))
        row = cur.fetchone()
        if row is not None:
            return row[0]
        if self.options.missing_user != "create":
            raise SinkRefused(404, f"Guacamole has no user {user!r}: create it there first")
        cur.execute("INSERT INTO guacamole_entity (name, type) VALUES (%s, 'USER')", (user,))
        entity = cur.lastrowid
        # No usable password: the hash of a random secret nobody keeps. Such a user logs in
        # through another authentication extension (SSO, LDAP) that maps to this name.
        salt = secrets.token_bytes(32)
        unusable = hashlib.sha256(secrets.token_hex(32).encode() + salt.hex().upper().encode())
        cur.execute("INSERT INTO guacamole_user (entity_id, password_hash, password_salt,"
                    " password_date) VALUES (%s, %s, %s, NOW())",
                    (entity, unusable.digest(), salt))
        log.info("created Guacamole user %s (no usable password)", user)
        return entity

    def _group(self, cur: pymysql.cursors.Cursor, entity: int) -> int | None:
        """The configured group path (created where missing), READ on each level."""
        parent = None
        for name in filter(None, (p.strip() for p in self.options.group.split("/"))):
            cur.execute("SELECT connection_group_id FROM guacamole_connection_group"
                        " WHERE connection_group_name = %s AND parent_id <=> %s",
                        (name[:MAX_NAME], parent))
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO guacamole_connection_group"
                            " (connection_group_name, parent_id) VALUES (%s, %s)",
                            (name[:MAX_NAME], parent))
                parent = cur.lastrowid
            else:
                parent = row[0]
            cur.execute("INSERT IGNORE INTO guacamole_connection_group_permission"
                        " (entity_id, connection_group_id, permission) VALUES (%s, %s, 'READ')",
                        (entity, parent))
        return parent

    def _insert_connection(self, cur: pymysql.cursors.Cursor, name: str, parent: int | None,
                           protocol: str) -> int:
        """Names are unique within a group: the second "web-12" becomes "web-12 (2)"."""
        guacd = self.options.guacd
        for n in range(1, 100):
            suffix = "" if n == 1 else f" ({n})"
            candidate = name[:MAX_NAME - len(suffix)] + suffix
            # The unique key does not cover the root (NULL parent), so look first.
            cur.execute("SELECT 1 FROM guacamole_connection WHERE connection_name = %s"
                        " AND parent_id <=> %s", (candidate, parent))
            if cur.fetchone():
                continue
            try:
                cur.execute(
                    "INSERT INTO guacamole_connection (connection_name, parent_id, protocol,"
                    " proxy_hostname, proxy_port, max_connections, max_connections_per_user)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (candidate, parent, protocol, guacd[0] if guacd else None,
                     guacd[1] if guacd else None, self.options.max_connections,
                     self.options.max_connections))
                return cur.lastrowid
            except pymysql.err.IntegrityError as e:
                if e.args[0] != 1062:          # not a duplicate name: a real problem
                    raise
        raise SinkRefused(409, f"too many Guacamole connections are named {name!r}")

    def _grant_read(self, cur: pymysql.cursors.Cursor, entity: int, connection_id: int) -> None:
        cur.execute("INSERT INTO guacamole_connection_permission (entity_id, connection_id,"
                    " permission) VALUES (%s, %s, 'READ')", (entity, connection_id))


__all__ = ["GuacamoleDb", "GuacamoleOptions", "SinkRefused", "StoreUnavailable", "client_url"]
