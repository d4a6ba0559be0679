"""Writes from many threads that share one commit, and so one fsync.

SQLite syncs every commit (store/sqlite.py says why) and lets one writer at a time commit:
each new console, each audit event and each answered broker job cost one sync, one after the
other, however many jobs or requests are in flight. Here a write that finds another one
committing waits for it, and everything that queued meanwhile goes in the next commit, led
by the first of them. A write alone commits at once, as before; none returns before its
commit is durable. Each write is a unit of its own inside the shared transaction (a
savepoint), so one that fails (a duplicate id) fails alone.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple


class Statement(NamedTuple):
    sql: str
    params: Sequence[Any]


class _Write:
    __slots__ = ("statements", "wake", "finished", "error")

    def __init__(self, statements: Sequence[Statement]) -> None:
        self.statements = statements
        self.wake = threading.Event()
        self.finished = False            # committed (or failed); False when woken: lead
        self.error: BaseException | None = None


class GroupCommit:
    """*connect* is the store's ``_db`` (an autocommit connection of this thread's);
    *begin* the statement that starts a write transaction."""

    def __init__(self, connect: Callable[[], contextlib.AbstractContextManager[Any]],
                 begin: str = "BEGIN") -> None:
        self.connect = connect
        self.begin = begin
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._busy = False                # a commit is being led

    def write(self, statements: Sequence[Statement]) -> None:
        """Run *statements* as one unit and commit; raise what they raised."""
        mine = _Write(statements)
        with self._lock:
            self._queue.append(mine)
            lead = not self._busy
            self._busy = True
        if not lead:
            mine.wake.wait()
            lead = not mine.finished      # woken to lead the next commit
        if lead:
            self._commit_queued()
        if mine.error is not None:
            raise mine.error

    def _commit_queued(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            with self._lock:
                for write in batch:
                    write.finished = True
                following = self._queue[0] if self._queue else None
                self._busy = following is not None
            for write in batch:
                write.wake.set()
            if following is not None:
                following.wake.set()

    def _commit(self, batch: list[_Write]) -> None:
        try:
            with self.connect() as db:
                if len(batch) == 1:
                    db.execute(self.begin)
                    try:
                        for sql, params in batch[0].statements:
                            db.execute(sql, params)
                    except Exception:
                        db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
                    return
                db.execute(self.begin)
                for write in batch:
                    db.execute("SAVEPOINT one_write")
                    try:
                        for sql, params in write.statements:
                            db.execute(sql, params)
                    except Exception as e:       # this write's own failure: the rest go on
                        write.error = e
                        # Raises (and so fails them all) if the error ended the transaction.
                        db.execute("ROLLBACK TO SAVEPOINT one_write")
                    db.execute("RELEASE SAVEPOINT one_write")
                db.execute("COMMIT")
        except BaseException as e:   # the commit failed (the store rolled it back): all did
            for write in batch:
                if write.error is None:
                    write.error = e
