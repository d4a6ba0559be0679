"""SQLite writes from concurrent requests share one commit (store/group_commit.py): none
returns before its commit is durable, a failed write fails alone, a failed commit fails every
write it held and leaves the store usable."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from guacbridge.store.group_commit import GroupCommit, Statement
from guacbridge.store.sqlite import SqliteGrantStore

INSERT = "INSERT INTO t (id) VALUES (?)"


class Slow:
    """A store's ``_db`` whose COMMIT takes a while (an fsync), counting commits; *fail*
    makes the next COMMIT raise instead."""

    def __init__(self, path):
        self.path = path
        self.local = threading.local()
        self.commits = 0
        self.fail = False
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)")

    def __call__(self):
        import contextlib

        @contextlib.contextmanager
        def connect():
            db = getattr(self.local, "db", None)
            if db is None:
                db = self.local.db = sqlite3.connect(self.path, timeout=10,
                                                     isolation_level=None)
            outer = self

            class Conn:
                in_transaction = property(lambda _: db.in_transaction)

                def execute(self, sql, params=()):
                    if sql == "COMMIT":
                        time.sleep(0.05)
                        if outer.fail:
                            outer.fail = False
                            raise sqlite3.OperationalError("disk I/O error")
                        outer.commits += 1
                    return db.execute(sql, params)
            try:
                yield Conn()
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise
        return connect()


def rows(path):
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT id FROM t")}


def write_all(group, ids, results, before=None):
    def one(i):
        try:
            group.write([Statement(INSERT, (i,))])
            results[i] = ("ok", i in rows(group.path))     # durable when it returns
        except Exception as e:
            results[i] = ("error", type(e).__name__)
    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    for t in threads:
        t.start()
        time.sleep(0.002)
    for t in threads:
        t.join(30)


@pytest.fixture
def group(tmp_path):
    db = Slow(tmp_path / "t.sqlite3")
    group = GroupCommit(db, "BEGIN IMMEDIATE")
    group.path, group.db = db.path, db
    return group


def test_concurrent_writes_share_commits_and_each_is_durable_when_it_returns(group):
    results = {}
    write_all(group, [f"r{i}" for i in range(30)], results)
    assert results == {f"r{i}": ("ok", True) for i in range(30)}
    assert rows(group.path) == set(results)
    assert group.db.commits < 15                  # shared: far fewer syncs than writes


def test_a_write_alone_commits_at_once(group):
    group.write([Statement(INSERT, ("alone",))])
    assert rows(group.path) == {"alone"} and group.db.commits == 1


def test_a_failed_write_fails_alone_in_a_shared_commit(group):
    group.write([Statement(INSERT, ("taken",))])
    results = {}
    # Two statements in one write: the duplicate second one undoes its first one too.
    ids = ["a", "b", "c", "d"]

    def dup():
        try:
            group.write([Statement(INSERT, ("half",)), Statement(INSERT, ("taken",))])
            results["dup"] = "ok"
        except sqlite3.IntegrityError:
            results["dup"] = "IntegrityError"
    blocker = threading.Thread(target=write_all, args=(group, ids, results))
    blocker.start()
    time.sleep(0.01)                              # the first commit is under way
    dup()
    blocker.join(30)
    assert results["dup"] == "IntegrityError"
    assert all(results[i] == ("ok", True) for i in ids)
    assert rows(group.path) == {"taken", *ids}    # nothing of the failed write


def test_a_failed_commit_fails_every_write_it_held_and_the_next_ones_work(group):
    results = {}
    group.db.fail = True
    write_all(group, ["x1", "x2", "x3"], results)
    failed = [i for i, r in results.items() if r[0] == "error"]
    assert failed and all(results[i] == ("error", "OperationalError") for i in failed)
    assert rows(group.path) == {i for i in results if i not in failed}
    results = {}
    write_all(group, ["y1", "y2"], results)       # no half-done transaction left behind
    assert results == {"y1": ("ok", True), "y2": ("ok", True)}


def test_the_sqlite_store_writes_through_it(tmp_path):
    store = SqliteGrantStore(tmp_path / "g.sqlite3")
    assert store.group is not None
    store.mark_replied("job-1", "m1", 1.0)
    store.mark_replied("job-1", "m1", 2.0)        # a repeat is no error
    assert store.replied("job-1", "m1")
    store.add_events([("c1", 1.0, "opened", "i", "{}"), ("c1", 2.0, "closed", "i", "{}")])
    assert [e.kind for e in store.events("c1")] == ["opened", "closed"]
