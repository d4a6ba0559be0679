"""The grant store's SQL, shared by the SQLite and MySQL backends.

Every method runs on a short connection of its own (``_db``), so stores are safe to call from
worker threads and come back by themselves after the database restarts. ``consume`` is the
single conditional UPDATE that makes tokens one-time, across instances too. Queries use
``?`` placeholders; a backend translates them if its driver wants another style.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from ..audit import Closed, EventRow, InUse, TunnelRow
from ..grants import Duplicate, Ended, Grant, Refused, Rekeyed, SessionEnd, Target
from ..keyring import KeyRing, SecretsError
from .group_commit import GroupCommit, Statement

# Tunnels per statement of a byte report: 9 values each, well inside SQLite's 32766 bound.
TUNNEL_ROWS = 500

# What a reconnect secret that is not (or no longer) the console's gets: the page that holds
# it was copied or replayed, and another one resumed the console since (sessions.py).
SECRET_REPLACED = ("this console session was resumed elsewhere with a newer secret; this page"
                   " can no longer reconnect to it")


class StoreUnavailable(Exception):
    """The database cannot be reached; the message says which and never holds a password."""

_COLUMNS = ("id, protocol, params, owner, end_user, created_at, use_by, duration, max_duration,"
            " extra_hash IS NOT NULL AS has_extra, consumed_at, deadline, closed_at, close_reason,"
            " session_hash IS NOT NULL AS has_session, live_tunnel, idle_since, sink, sink_ref,"
            " sink_state, up_at, CASE WHEN power IS NULL THEN power_target IS NOT NULL"
            " ELSE power END AS has_power, follows")   # sessions() counts the commas

# Columns added since a table was first created: (table, column, type per backend). Each
# store adds what an existing database lacks when it creates its tables (the SQLite store on
# start, `guacbridge initdb` for MySQL), so an upgrade needs no hand-written ALTER.
ADDED_COLUMNS = (
    ("console_grant", "power_target", {"sqlite": "TEXT", "mysql": "TEXT"}),
    ("console_grant", "session_next_hash", {"sqlite": "TEXT", "mysql": "CHAR(64)"}),
    # Before these, power_target was kept only for consoles with the power right: a row
    # without a power value has it exactly when it has a power_target (_COLUMNS).
    ("console_grant", "power", {"sqlite": "INTEGER", "mysql": "TINYINT"}),
    ("console_grant", "follows", {"sqlite": "INTEGER", "mysql": "TINYINT"}),
)


class SqlGrantStore:
    NULL_SAFE_EQ = "IS"            # SQLite; MySQL spells it <=>
    INTEGRITY_ERROR: type[Exception] = Exception   # the driver's duplicate-key error
    BEGIN = "BEGIN"
    FOR_UPDATE = ""
    keys: KeyRing | None = None    # seals each grant's params (keyring.py)
    # Insert a live tunnel's row or update its counts (SQLite; MySQL has its own spelling).
    UPSERT_TUNNEL = (" ON CONFLICT (tunnel_id) DO UPDATE SET bytes_out = excluded.bytes_out,"
                     " bytes_in = excluded.bytes_in, seen_at = excluded.seen_at")

    # SQLite's: the inserts of concurrent jobs and requests share one synced commit.
    group: GroupCommit | None = None

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        """A connection in autocommit mode whose ``execute`` returns a cursor."""
        raise NotImplementedError
        yield

    def _insert(self, sql: str, params: Sequence[Any]) -> None:
        """One INSERT, committed before it returns (group_commit.py, where the store has it)."""
        if self.group is not None:
            self.group.write([Statement(sql, params)])
            return
        with self._db() as db:
            db.execute(sql, params)

    def _insert_all(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Several rows in one commit, all or none."""
        if self.group is not None:
            self.group.write([Statement(sql, row) for row in rows])
            return
        with self._db() as db:          # one multi-row statement (MySQL's executemany)
            db.executemany(sql, rows)

    def issue(self, grant: Grant, token_hash: str, extra_hash: str | None,
              asked_target: dict[str, Any] | None = None) -> None:
        """*asked_target*: the target as the request gave it (the agent's input, which may
        hold credentials: sealed like the params), kept for a console with the power right
        or whose agent follows; in the ``power_target`` column, its name from when only
        power kept it."""
        asked = None if asked_target is None else self._ring().seal(
            _asked_id(grant.id), asked_target)
        with _duplicate_as(self.INTEGRITY_ERROR):
            self._insert(
                "INSERT INTO console_grant (id, token_hash, extra_hash, protocol, params, owner,"
                " end_user, created_at, use_by, duration, max_duration, consumed_at, deadline,"
                " sink, sink_state, power_target, power, follows)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (grant.id, token_hash, extra_hash, grant.target.protocol,
                 self._ring().seal(grant.id, grant.target.params), grant.owner, grant.user,
                 grant.created_at, grant.use_by, grant.duration, grant.max_duration,
                 grant.consumed_at, grant.deadline, grant.sink, grant.sink_state, asked,
                 int(grant.power), int(grant.follows)))

    def asked_target(self, grant_id: str) -> dict[str, Any] | None:
        """The target the console was asked for, if it was kept; None otherwise."""
        with self._db() as db:
            row = db.execute("SELECT power_target FROM console_grant WHERE id = ?",
                             (grant_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        return self._ring().open(_asked_id(grant_id), row[0])

    def locate(self, grant_id: str, target: Target) -> bool:
        """Where a console that waited for its server is, now that it is on; False if it
        was located already or has ended."""
        with self._db() as db:
            return db.execute(
                "UPDATE console_grant SET protocol = ?, params = ? WHERE id = ? AND"
                " protocol = '' AND closed_at IS NULL",
                (target.protocol, self._ring().seal(grant_id, target.params),
                 grant_id)).rowcount == 1

    def add_columns(self, db: Any, backend: str, present: dict[str, set[str]]) -> None:
        """ALTER TABLE for each of ADDED_COLUMNS that *present* (table → its columns)
        lacks."""
        for table, column, types in ADDED_COLUMNS:
            if column not in present.get(table, {column}):
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {types[backend]}")

    def delete(self, grant_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM console_event WHERE console_id = ?", (grant_id,))
            db.execute("DELETE FROM console_grant WHERE id = ?", (grant_id,))

    def rotate_token(self, grant_id: str, token_hash: str) -> bool:
        with self._db() as db:
            return db.execute("UPDATE console_grant SET token_hash = ? WHERE id = ? AND"
                              " consumed_at IS NULL AND closed_at IS NULL",
                              (token_hash, grant_id)).rowcount == 1

    def consume(self, token_hash: str, extra_hash: str | None, now: float, *,
                session_hash: str | None = None, tunnel_id: str | None = None) -> Grant:
        with self._db() as db:
            cur = db.execute(
                "UPDATE console_grant SET consumed_at = ?, deadline = ? + duration,"
                " session_hash = ?, live_tunnel = ?, idle_since = ?"
                " WHERE token_hash = ? AND consumed_at IS NULL AND closed_at IS NULL"
                " AND use_by > ? AND (extra_hash IS NULL OR extra_hash = ?)",
                (now, now, session_hash, tunnel_id, None if tunnel_id else now, token_hash,
                 now, extra_hash))
            row = db.execute(f"SELECT {_COLUMNS}, extra_hash {self.NULL_SAFE_EQ} ?"
                             " FROM console_grant WHERE token_hash = ?",
                             (extra_hash, token_hash)).fetchone()
        if cur.rowcount == 1 and row is not None:
            return self._grant(row[:-1])
        raise Refused(_why_refused(row, now), row[0] if row else None)

    def resume(self, grant_id: str, session_hash: str, next_hash: str, tunnel_id: str,
               now: float, window: float) -> Grant:
        # One conditional UPDATE: the secret used becomes the current one, *next_hash* its
        # successor (replacing any earlier successor the page never used).
        with self._db() as db:
            cur = db.execute(
                "UPDATE console_grant SET live_tunnel = ?, idle_since = NULL,"
                " session_hash = ?, session_next_hash = ?"
                " WHERE id = ? AND (session_hash = ? OR session_next_hash = ?)"
                " AND closed_at IS NULL AND deadline > ?"
                " AND (idle_since IS NULL OR idle_since > ?)",
                (tunnel_id, session_hash, next_hash, grant_id, session_hash, session_hash,
                 now, now - window))
            known = db.execute("SELECT 1 FROM console_grant WHERE id = ? AND"
                               " (session_hash = ? OR session_next_hash = ?)",
                               (grant_id, session_hash, session_hash)).fetchone()
        grant = self.get(grant_id)
        if cur.rowcount == 1 and grant is not None:
            return grant
        if grant is None or not grant.has_session:
            raise Refused("unknown console session")
        if grant.closed_at is not None:
            raise Refused(f"this console has been closed ({grant.close_reason})")
        if grant.deadline is not None and grant.deadline <= now:
            raise Refused("the console's time is up")
        if known is None:
            raise Refused(SECRET_REPLACED, grant_id)
        raise Refused("the console was left too long to reconnect", grant_id)

    def by_session(self, grant_id: str, session_hash: str) -> Grant | None:
        # The successor's first use confirms that the page holds it: the one before is dead.
        with self._db() as db:
            db.execute("UPDATE console_grant SET session_hash = session_next_hash,"
                       " session_next_hash = NULL WHERE id = ? AND session_next_hash = ?",
                       (grant_id, session_hash))
            row = db.execute(f"SELECT {_COLUMNS} FROM console_grant WHERE id = ?"
                             " AND session_hash = ?", (grant_id, session_hash)).fetchone()
        return self._grant(row) if row else None

    def tunnel_ended(self, grant_id: str, tunnel_id: str, now: float) -> None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET idle_since = ?, live_tunnel = NULL"
                       " WHERE id = ? AND live_tunnel = ?", (now, grant_id, tunnel_id))

    def session_ends(self, grant_ids: Sequence[str]) -> dict[str, SessionEnd]:
        """Of each known grant, in one query per 500."""
        out: dict[str, SessionEnd] = {}
        with self._db() as db:
            for i in range(0, len(grant_ids), 500):
                chunk = list(grant_ids[i:i + 500])
                rows = db.execute("SELECT id, deadline, closed_at, close_reason, live_tunnel"
                                  " FROM console_grant WHERE id IN"
                                  f" ({','.join('?' * len(chunk))})", chunk).fetchall()
                out.update((row[0], SessionEnd(*row[1:])) for row in rows)
        return out

    def ping(self) -> None:
        """For /readyz: the calling thread's kept connection answers (one is made if it has
        none, or if the kept one broke); StoreUnavailable if the database does not."""
        with self._db() as db:
            db.execute("SELECT 1").fetchall()

    def get(self, grant_id: str) -> Grant | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM console_grant WHERE id = ?",
                             (grant_id,)).fetchone()
        return self._grant(row) if row else None

    def set_deadline(self, grant_id: str, *, deadline: float | None = None,
                     duration: int | None = None) -> Grant | None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET deadline = COALESCE(?, deadline),"
                       " duration = COALESCE(?, duration) WHERE id = ? AND closed_at IS NULL",
                       (deadline, duration, grant_id))
        return self.get(grant_id)

    def close(self, grant_id: str, reason: str, now: float) -> Grant | None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET closed_at = ?, close_reason = ?"
                       " WHERE id = ? AND closed_at IS NULL", (now, reason, grant_id))
        return self.get(grant_id)

    def _ring(self) -> KeyRing:
        if self.keys is None:
            raise SecretsError("this grant store has no secret keys: set secret_keys or"
                               " secret_key_file")
        return self.keys

    def _grant(self, row: tuple) -> Grant:
        return _grant(row, self._ring().open)

    def rekey(self, batch: int = 200) -> Rekeyed:
        """Seal every stored grant's params with the current key (rows sealed with an older
        key, or unsealed ones from before). Safe beside running instances: a row is
        rewritten only if it is still what was read."""
        ring = self._ring()
        resealed = current = 0
        failed: list[str] = []
        after = ""
        while True:
            with self._db() as db:
                rows = db.execute("SELECT id, params, power_target FROM console_grant"
                                  " WHERE id > ? ORDER BY id LIMIT ?", (after, batch)).fetchall()
                for grant_id, _, asked in rows:     # the asked target, if any, alike
                    if asked is not None and not ring.sealed_with_current(asked):
                        with contextlib.suppress(SecretsError):
                            db.execute("UPDATE console_grant SET power_target = ? WHERE id = ?"
                                       " AND power_target = ?", (ring.seal(
                                           _asked_id(grant_id),
                                           ring.open(_asked_id(grant_id), asked)),
                                           grant_id, asked))
                for grant_id, blob, _ in rows:
                    if ring.sealed_with_current(blob):
                        current += 1
                        continue
                    try:
                        fresh = ring.seal(grant_id, ring.open(grant_id, blob))
                    except SecretsError:
                        failed.append(grant_id)
                        continue
                    resealed += db.execute("UPDATE console_grant SET params = ? WHERE id = ?"
                                           " AND params = ?", (fresh, grant_id, blob)).rowcount
            if len(rows) < batch:
                return Rekeyed(resealed, current, failed)
            after = rows[-1][0]

    # -- audit (audit.AuditStore) -------------------------------------------------------

    def add_event(self, console_id: str, at: float, kind: str, instance: str,
                  data: str) -> None:
        self.add_events([(console_id, at, kind, instance, data)])

    def add_events(self, rows: Sequence[tuple[str, float, str, str, str]]) -> None:
        self._insert_all("INSERT INTO console_event (console_id, at, kind, instance, data)"
                         " VALUES (?,?,?,?,?)", rows)

    def events(self, console_id: str) -> list[EventRow]:
        with self._db() as db:
            return [EventRow(*r) for r in db.execute(
                "SELECT at, kind, instance, data FROM console_event WHERE console_id = ?"
                " ORDER BY id", (console_id,)).fetchall()]

    def closed_since(self, since: float) -> list[Closed]:
        with self._db() as db:
            return [Closed(*r) for r in db.execute(
                "SELECT id, close_reason FROM console_grant WHERE closed_at >= ?",
                (since,)).fetchall()]

    def report_tunnels(self, rows: list[TunnelRow]) -> None:
        """The tunnels whose counts moved, in one commit: a multi-row upsert per
        ``TUNNEL_ROWS`` of them. (An ``executemany`` on an autocommit connection was one
        synced commit per tunnel: at a few thousand idle consoles, every five seconds, a
        sixth of the service's time.)"""
        if not rows:
            return
        with self._db() as db:
            db.execute(self.BEGIN)
            try:
                for i in range(0, len(rows), TUNNEL_ROWS):
                    part = rows[i:i + TUNNEL_ROWS]
                    db.execute(
                        "INSERT INTO console_tunnel (tunnel_id, console_id, instance,"
                        " client_address, user_agent, started_at, bytes_out, bytes_in, seen_at)"
                        " VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?)"] * len(part))
                        + self.UPSERT_TUNNEL, [value for row in part for value in row])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def tunnel_gone(self, tunnel_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM console_tunnel WHERE tunnel_id = ?", (tunnel_id,))

    def sessions(self) -> list[InUse]:
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS}, t.tunnel_id, t.console_id, t.instance, t.client_address,"
                " t.user_agent, t.started_at, t.bytes_out, t.bytes_in, t.seen_at FROM console_grant"
                " LEFT JOIN console_tunnel t ON t.tunnel_id = console_grant.live_tunnel"
                " WHERE closed_at IS NULL AND consumed_at IS NOT NULL"
                " ORDER BY consumed_at").fetchall()
        width = len(_COLUMNS.split(","))
        return [InUse(self._listed(r[:width]),
                      TunnelRow(*r[width:]) if r[width] is not None else None) for r in rows]

    def _listed(self, row: tuple) -> Grant:
        """A grant for a list: one whose secrets do not open is shown without its target."""
        try:
            return self._grant(row)
        except SecretsError:
            return _grant(row)

    def purge(self, before: float, batch: int = 500) -> int:
        """Delete consoles closed before *before* (a guacamole-sink one only once its
        connection is gone), with everything kept about them; tunnel rows no instance has
        reported since then (an instance that died); and broker replies that old, long
        past any redelivery."""
        purged = 0
        with self._db() as db:
            db.execute("DELETE FROM console_tunnel WHERE seen_at < ?", (before,))
            db.execute("DELETE FROM job_reply WHERE replied_at < ?", (before,))
            while True:
                ids = [r[0] for r in db.execute(
                    "SELECT id FROM console_grant WHERE closed_at < ? AND (sink = 'direct'"
                    " OR sink_state = 'removed' OR sink_state IS NULL) LIMIT ?",
                    (before, batch)).fetchall()]
                if not ids:
                    return purged
                marks = ",".join("?" * len(ids))
                for table, column in (("console_event", "console_id"),
                                      ("console_tunnel", "console_id"),
                                      ("console_share", "console_id"),
                                      ("console_live", "console_id"),
                                      ("console_grant", "id")):
                    db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
                purged += len(ids)

    def replied(self, job_id: str, message_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM job_reply WHERE job_id = ? AND message_id = ?",
                              (job_id, message_id)).fetchone() is not None

    def mark_replied(self, job_id: str, message_id: str, now: float) -> None:
        with contextlib.suppress(self.INTEGRITY_ERROR):
            self._insert("INSERT INTO job_reply (job_id, message_id, replied_at)"
                         " VALUES (?,?,?)", (job_id, message_id[:128], now))

    def mark_up(self, grant_id: str, now: float) -> None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET up_at = ? WHERE id = ? AND up_at IS NULL",
                       (now, grant_id))

    def set_sink(self, grant_id: str, ref: str | None, state: str) -> None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET sink_ref = COALESCE(?, sink_ref),"
                       " sink_state = ? WHERE id = ?", (ref, state, grant_id))

    def sinks_to_clean(self, now: float, stale: float) -> list[Grant]:
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM console_grant WHERE sink <> 'direct' AND"
                " ((closed_at IS NOT NULL AND sink_state IN ('provisioning', 'ready'))"
                "  OR (sink_state = 'provisioning' AND created_at <= ?))",
                (now - stale,)).fetchall()
        return [self._grant(r) for r in rows]

    def expire(self, now: float, window: float) -> list[Ended]:
        with self._db() as db:
            db.execute(self.BEGIN)
            try:
                ended = db.execute(
                    "SELECT id, CASE WHEN consumed_at IS NULL THEN 'expired'"
                    " WHEN deadline <= ? THEN 'time limit reached' ELSE 'browser left' END"
                    " FROM console_grant WHERE closed_at IS NULL AND"
                    " ((consumed_at IS NULL AND use_by <= ?) OR deadline <= ?"
                    "  OR idle_since <= ?)" + self.FOR_UPDATE,
                    (now, now, now, now - window)).fetchall()
                for grant_id, reason in ended:
                    db.execute("UPDATE console_grant SET closed_at = ?, close_reason = ?"
                               " WHERE id = ?", (now, reason, grant_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [Ended(i, reason) for i, reason in ended]


def _asked_id(grant_id: str) -> str:
    """What the asked target is sealed to: its console, and not as the console's params
    (the words are the column's, so that targets kept before the rename still open)."""
    return f"{grant_id} power_target"


@contextlib.contextmanager
def _duplicate_as(error: type[Exception]) -> Iterator[None]:
    try:
        yield
    except error as e:
        raise Duplicate(str(e)) from None


def _grant(row: tuple, open_params: Any = None) -> Grant:
    """A row as a Grant; *open_params(id, blob)* unseals the params (without it: none)."""
    (gid, protocol, params, owner, user, created, use_by, duration, max_duration, has_extra,
     consumed, deadline, closed, reason, has_session, live_tunnel, idle_since, sink, sink_ref,
     sink_state, up_at, has_power, follows) = row
    params = open_params(gid, params) if open_params else {}
    return Grant(id=gid, target=Target(protocol, params), owner=owner, user=user,
                 created_at=created, use_by=use_by, duration=duration,
                 max_duration=max_duration, has_extra=bool(has_extra), consumed_at=consumed,
                 deadline=deadline, closed_at=closed, close_reason=reason,
                 has_session=bool(has_session), live_tunnel=live_tunnel,
                 idle_since=idle_since, sink=sink, sink_ref=sink_ref, sink_state=sink_state,
                 up_at=up_at, power=bool(has_power), follows=bool(follows))


def _why_refused(row: tuple | None, now: float) -> str:
    if row is None:
        return "unknown console token"
    grant, extra_matches = _grant(row[:-1]), row[-1]
    if grant.consumed_at is not None:
        return "this console link has already been used"
    if grant.use_by <= now or grant.close_reason == "expired":
        return "this console link has expired"
    if grant.closed_at is not None:
        return "this console has been closed"
    if grant.has_extra and not extra_matches:
        return "the extra token is missing or wrong"
    return "console token refused"
