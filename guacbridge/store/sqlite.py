"""SQLite grant store: the default for a single instance, in ``GUACBRIDGE_DATA_DIR``.

Each thread keeps its connection open: opening one per call cost ~2 ms, because closing the
last connection of a WAL database checkpoints it and deletes its ``-wal`` file every time.
Commits are synced (SQLite's default, ``synchronous=FULL``): ``synchronous=NORMAL`` would
save an fsync per console created and per tunnel opened (about 0.4 ms at p50, 4 ms at p99 on
a busy disk), but a power cut could then undo a token's consumption and let its link work a
second time. One-time means one time, so the fsync stays.
"""
from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import threading
import time
from collections.abc import Iterator

from .. import keyring, resources
from .group_commit import GroupCommit
from .sql import SqlGrantStore


class SqliteGrantStore(SqlGrantStore):
    BEGIN = "BEGIN IMMEDIATE"     # take the write lock up front: sweepers don't deadlock
    INTEGRITY_ERROR = sqlite3.IntegrityError

    def __init__(self, path: pathlib.Path, keys: keyring.KeyRing | None = None) -> None:
        """Without *keys*: the key file beside the database, made at the first start."""
        self.path = pathlib.Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys = keys or keyring.load_or_create(self.path.parent / keyring.KEY_FILE_NAME)
        # Two processes opening a new file at once (a serve and a worker) may find it locked
        # while the other switches it to WAL: wait for that, briefly.
        for attempt in range(50):
            try:
                with self._db() as db:
                    db.execute("PRAGMA journal_mode=WAL")   # readers run beside the writer
                    db.executescript(resources.sql("sqlite.sql"))
                    self.add_columns(db, "sqlite", {"console_grant": {
                        row[1] for row in db.execute("PRAGMA table_info(console_grant)")}})
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 49:
                    raise
                time.sleep(0.1)
        self.path.chmod(0o600)   # sealed secrets, but also who used which console
        self.group = GroupCommit(self._db, self.BEGIN)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA secure_delete=ON")   # what is overwritten or purged is gone
            self._local.db = db
        try:
            yield db
        except BaseException:
            if db.in_transaction:       # never hand the next call a half-done transaction
                db.rollback()
            raise
