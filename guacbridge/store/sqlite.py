"""SQLite grant store: the default for a single instance, in ``GUACBRIDGE_DATA_DIR``.

One short connection per call keeps it safe to use from worker threads; WAL mode lets readers
run beside the writer. ``consume`` is the single conditional UPDATE that makes tokens one-time.
"""
from __future__ import annotations

import contextlib
import json
import pathlib
import sqlite3
from collections.abc import Iterator

from .. import resources
from ..grants import Grant, Refused, Target

_COLUMNS = ("id, protocol, params, owner, end_user, created_at, use_by, duration, max_duration,"
            " extra_hash IS NOT NULL AS has_extra, consumed_at, deadline, closed_at, close_reason,"
            " session_hash IS NOT NULL AS has_session, live_tunnel, idle_since")


class SqliteGrantStore:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(resources.sql("sqlite.sql"))
        self.path.chmod(0o600)   # it holds connection passwords

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    def issue(self, grant: Grant, token_hash: str, extra_hash: str | None) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO console_grant (id, token_hash, extra_hash, protocol, params, owner,"
                " end_user, created_at, use_by, duration, max_duration)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (grant.id, token_hash, extra_hash, grant.target.protocol,
                 json.dumps(grant.target.params), grant.owner, grant.user, grant.created_at,
                 grant.use_by, grant.duration, grant.max_duration))

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
            row = db.execute(f"SELECT {_COLUMNS}, extra_hash IS ? FROM console_grant"
                             " WHERE token_hash = ?", (extra_hash, token_hash)).fetchone()
        if cur.rowcount == 1 and row is not None:
            return _grant(row[:-1])
        raise Refused(_why_refused(row, now))

    def resume(self, grant_id: str, session_hash: str, tunnel_id: str, now: float,
               window: float) -> Grant:
        with self._db() as db:
            cur = db.execute(
                "UPDATE console_grant SET live_tunnel = ?, idle_since = NULL"
                " WHERE id = ? AND session_hash = ? AND closed_at IS NULL AND deadline > ?"
                " AND (idle_since IS NULL OR idle_since > ?)",
                (tunnel_id, grant_id, session_hash, now, now - window))
        grant = self.get(grant_id)
        if cur.rowcount == 1 and grant is not None:
            return grant
        if grant is None or not grant.has_session:
            raise Refused("unknown console session")
        if grant.closed_at is not None:
            raise Refused(f"this console has been closed ({grant.close_reason})")
        if grant.deadline is not None and grant.deadline <= now:
            raise Refused("the console's time is up")
        raise Refused("the console was left too long to reconnect, or the secret is wrong")

    def by_session(self, grant_id: str, session_hash: str) -> Grant | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM console_grant WHERE id = ?"
                             " AND session_hash = ?", (grant_id, session_hash)).fetchone()
        return _grant(row) if row else None

    def tunnel_ended(self, grant_id: str, tunnel_id: str, now: float) -> None:
        with self._db() as db:
            db.execute("UPDATE console_grant SET idle_since = ?, live_tunnel = NULL"
                       " WHERE id = ? AND live_tunnel = ?", (now, grant_id, tunnel_id))

    def get(self, grant_id: str) -> Grant | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM console_grant WHERE id = ?",
                             (grant_id,)).fetchone()
        return _grant(row) if row else None

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

    def active(self, now: float) -> list[Grant]:
        with self._db() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM console_grant WHERE closed_at IS NULL"
                              " AND consumed_at IS NOT NULL AND deadline > ?"
                              " ORDER BY consumed_at", (now,)).fetchall()
        return [_grant(r) for r in rows]

    def expire(self, now: float, window: float) -> list[tuple[str, str]]:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            ended = db.execute(
                "SELECT id, CASE WHEN consumed_at IS NULL THEN 'expired'"
                " WHEN deadline <= ? THEN 'time limit reached' ELSE 'browser left' END"
                " FROM console_grant WHERE closed_at IS NULL AND"
                " ((consumed_at IS NULL AND use_by <= ?) OR deadline <= ?"
                "  OR idle_since <= ?)", (now, now, now, now - window)).fetchall()
            db.executemany("UPDATE console_grant SET closed_at = ?, close_reason = ?"
                           " WHERE id = ?", [(now, reason, i) for i, reason in ended])
            db.execute("COMMIT")
        return [(i, reason) for i, reason in ended]


def _grant(row: tuple) -> Grant:
    (gid, protocol, params, owner, user, created, use_by, duration, max_duration, has_extra,
     consumed, deadline, closed, reason, has_session, live_tunnel, idle_since) = row
    return Grant(id=gid, target=Target(protocol, json.loads(params)), owner=owner, user=user,
                 created_at=created, use_by=use_by, duration=duration,
                 max_duration=max_duration, has_extra=bool(has_extra), consumed_at=consumed,
                 deadline=deadline, closed_at=closed, close_reason=reason,
                 has_session=bool(has_session), live_tunnel=live_tunnel,
                 idle_since=idle_since)


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
