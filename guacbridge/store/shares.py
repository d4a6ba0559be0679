"""Share links and the owner's live guacd connection, in the grant store's database.

A share is a one-time link like a console's: its token is stored only as a SHA-256 and is
consumed by one conditional UPDATE, so a second browser with the same link is refused, across
instances too. The SQL runs on the grant store's connections (SQLite or MySQL alike).
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from ..grants import Refused


@dataclasses.dataclass(frozen=True)
class Share:
    id: str
    console_id: str
    mode: str                  # view, control, playback
    created_by: str
    created_at: float
    use_by: float
    consumed_at: float | None = None
    viewer: str | None = None
    live_tunnel: str | None = None
    ended_at: float | None = None
    end_reason: str | None = None

    def state(self, now: float) -> str:
        if self.ended_at is not None:
            return "revoked" if (self.end_reason or "").startswith("revoked") else "ended"
        if self.consumed_at is None:
            return "pending" if now < self.use_by else "expired"
        return "watching" if self.live_tunnel else "joined"


class LiveConnection(NamedTuple):
    """The guacd connection a console's owner holds now, which viewers join."""
    address: tuple[str, int]     # the guacd holding it
    connection_id: str


_COLUMNS = ("id, console_id, mode, created_by, created_at, use_by, consumed_at, viewer,"
            " live_tunnel, ended_at, end_reason")


class ShareStore:
    def __init__(self, db: Callable[[], AbstractContextManager[Any]]) -> None:
        self._db = db      # the grant store's: a connection whose execute() returns a cursor

    def issue(self, share: Share, token_hash: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO console_share (id, console_id, mode, token_hash, created_by,"
                       " created_at, use_by) VALUES (?,?,?,?,?,?,?)",
                       (share.id, share.console_id, share.mode, token_hash, share.created_by,
                        share.created_at, share.use_by))

    def consume(self, token_hash: str, session_hash: str, viewer: str, now: float) -> Share:
        with self._db() as db:
            cur = db.execute("UPDATE console_share SET consumed_at = ?, session_hash = ?,"
                             " viewer = ? WHERE token_hash = ? AND consumed_at IS NULL"
                             " AND ended_at IS NULL AND use_by > ?",
                             (now, session_hash, viewer[:255], token_hash, now))
            row = db.execute(f"SELECT {_COLUMNS} FROM console_share WHERE token_hash = ?",
                             (token_hash,)).fetchone()
        share = Share(*row) if row else None
        if cur.rowcount == 1 and share is not None:
            return share
        if share is None:
            raise Refused("unknown share link")
        if share.consumed_at is not None:
            raise Refused("this share link has already been used")
        if share.ended_at is not None:
            raise Refused(f"this share link has ended ({share.end_reason})")
        raise Refused("this share link has expired")

    def by_session(self, share_id: str, session_hash: str) -> Share | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM console_share WHERE id = ? AND"
                             " session_hash = ?", (share_id, session_hash)).fetchone()
        return Share(*row) if row else None

    def get(self, share_id: str) -> Share | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM console_share WHERE id = ?",
                             (share_id,)).fetchone()
        return Share(*row) if row else None

    def of_console(self, console_id: str, modes: tuple[str, ...] = ("view", "control")
                   ) -> list[Share]:
        marks = ",".join("?" * len(modes))
        with self._db() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM console_share WHERE console_id = ?"
                              f" AND mode IN ({marks}) ORDER BY created_at",
                              (console_id, *modes)).fetchall()
        return [Share(*r) for r in rows]

    def end(self, share_id: str, reason: str, now: float) -> Share | None:
        """Record the end once; later calls keep the first reason."""
        with self._db() as db:
            db.execute("UPDATE console_share SET ended_at = ?, end_reason = ?,"
                       " live_tunnel = NULL WHERE id = ? AND ended_at IS NULL",
                       (now, reason, share_id))
        return self.get(share_id)

    def end_console(self, console_id: str, reason: str, now: float) -> list[str]:
        """End every share of a console still open; their ids."""
        with self._db() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM console_share WHERE console_id = ? AND ended_at IS NULL"
                " AND mode <> 'playback'", (console_id,)).fetchall()]
            db.execute("UPDATE console_share SET ended_at = ?, end_reason = ?,"
                       " live_tunnel = NULL WHERE console_id = ? AND ended_at IS NULL"
                       " AND mode <> 'playback'", (now, reason, console_id))
        return ids

    def set_tunnel(self, share_id: str, tunnel_id: str | None,
                   only_if: str | None = None) -> None:
        """The viewer's live tunnel; with *only_if*, clear it only if that tunnel holds it."""
        with self._db() as db:
            if only_if is None:
                db.execute("UPDATE console_share SET live_tunnel = ? WHERE id = ?",
                           (tunnel_id, share_id))
            else:
                db.execute("UPDATE console_share SET live_tunnel = ? WHERE id = ? AND"
                           " live_tunnel = ?", (tunnel_id, share_id, only_if))

    # -- the owner's guacd connection -----------------------------------------------------

    def set_live(self, console_id: str, address: tuple[str, int], connection_id: str,
                 now: float) -> None:
        with self._db() as db:
            db.execute("DELETE FROM console_live WHERE console_id = ?", (console_id,))
            with contextlib.suppress(Exception):   # a racing owner tunnel: the later wins
                db.execute("INSERT INTO console_live (console_id, guacd_host, guacd_port,"
                           " connection_id, since) VALUES (?,?,?,?,?)",
                           (console_id, address[0], address[1], connection_id, now))

    def clear_live(self, console_id: str, connection_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM console_live WHERE console_id = ? AND connection_id = ?",
                       (console_id, connection_id))

    def live(self, console_id: str) -> LiveConnection | None:
        """The owner's guacd connection, if there is one."""
        with self._db() as db:
            row = db.execute("SELECT guacd_host, guacd_port, connection_id FROM console_live"
                             " WHERE console_id = ?", (console_id,)).fetchone()
        return LiveConnection((row[0], int(row[1])), row[2]) if row else None
