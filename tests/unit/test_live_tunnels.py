"""The live-tunnel registry on its own: what attaches can be stopped, counted and detached."""
import asyncio
import sqlite3

from guacbridge import config
from guacbridge.audit import Audit, Client, LiveTunnel
from guacbridge.live import LiveTunnels
from guacbridge.store.sqlite import SqliteGrantStore


def registry(tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path))
    store = SqliteGrantStore(settings.sqlite_path)
    return LiveTunnels(store, Audit(store, "here"))


def test_a_console_stop_ends_each_of_its_tunnels_and_no_other(tmp_path):
    live = registry(tmp_path)
    stopped = []
    live.attach("c1", lambda why: stopped.append(("a", why)))
    live.attach("c1", lambda why: stopped.append(("b", why)))
    live.attach("c2", lambda why: stopped.append(("c", why)))
    assert (live.count("c1"), live.count("c2"), live.total()) == (2, 1, 3)
    live.stop("c1", "closed by API")
    assert sorted(stopped) == [("a", "closed by API"), ("b", "closed by API")]
    live.stop_all("shutting down")
    assert ("c", "shutting down") in stopped


def test_a_detached_tunnel_is_neither_counted_nor_stopped_nor_listed(tmp_path):
    live = registry(tmp_path)
    stopped = []

    async def attach_and_leave():
        detach = live.attach("c1", stopped.append,
                             LiveTunnel("t1", "c1", Client("192.0.2.1"), 0.0))
        assert "t1" in live.audit.tunnels
        detach()
        await live.audit.settle()
    asyncio.run(attach_and_leave())
    live.stop("c1", "closed")
    assert stopped == [] and live.count("c1") == 0 and live.total() == 0
    assert "t1" not in live.audit.tunnels


def wal_frames(path: str) -> int:
    """Pages written to the WAL since the last checkpoint (each commit writes its own)."""
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        db.close()


def test_the_byte_report_writes_only_the_tunnels_that_moved_and_all_of_them_in_one_commit(
        tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path))
    store = SqliteGrantStore(settings.sqlite_path)
    now = [1000.0]
    audit = Audit(store, "here", clock=lambda: now[0])
    counts = {f"t{i}": (100, 10) for i in range(1200)}
    tunnels = [LiveTunnel(t, "c" + t, Client("192.0.2.1", "Firefox"), 1.0,
                          counts=lambda t=t: counts[t]) for t in counts]
    audit.tunnels = {t.tunnel_id: t for t in tunnels}

    def listed() -> dict[str, tuple]:
        db = sqlite3.connect(settings.sqlite_path)
        try:
            return {r[0]: r[1:] for r in db.execute(
                "SELECT tunnel_id, bytes_out, bytes_in, seen_at, user_agent FROM console_tunnel")}
        finally:
            db.close()

    sqlite3.connect(settings.sqlite_path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    asyncio.run(audit.report())
    # One commit: a few dozen pages of rows and index, not a commit (and a sync) per tunnel.
    assert wal_frames(settings.sqlite_path) < 200
    assert listed() == {t: (100, 10, 1000.0, "Firefox") for t in counts}

    now[0], counts["t7"] = 1005.0, (150, 12)
    asyncio.run(audit.report())
    rows = listed()
    assert rows["t7"] == (150, 12, 1005.0, "Firefox")
    assert {t: r for t, r in rows.items() if t != "t7"} == \
        {t: (100, 10, 1000.0, "Firefox") for t in counts if t != "t7"}
