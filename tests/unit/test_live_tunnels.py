"""The live-tunnel registry on its own: what attaches can be stopped, counted and detached."""
import asyncio

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
