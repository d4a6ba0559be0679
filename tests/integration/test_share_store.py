"""The share store on both databases guacbridge keeps grants in (SQLite and real MariaDB):
a share link is consumed once even by instances racing for it, and the owner's live guacd
connection is one row that the owner's next connection replaces."""
import threading
import time
import uuid

import pytest

from guacbridge import grants
from guacbridge.grants import Refused
from guacbridge.store.mysql import MysqlGrantStore
from guacbridge.store.shares import Share, ShareStore
from guacbridge.store.sqlite import SqliteGrantStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "mysql"])
def stores(request, tmp_path):
    """Two instances' share stores on one database."""
    if request.param == "sqlite":
        made = [SqliteGrantStore(tmp_path / "g.sqlite3") for _ in range(2)]
    else:
        url = request.getfixturevalue("mariadb").create_database(f"gb_{uuid.uuid4().hex[:8]}")
        MysqlGrantStore(url).create_tables()
        made = [MysqlGrantStore(url) for _ in range(2)]
    return [ShareStore(store._db) for store in made]


def new_share(store, token: str, ttl: float = 60) -> Share:
    now = time.time()
    share = Share(id=grants.new_id(), console_id=grants.new_id(), mode="view",
                  created_by="t", created_at=now, use_by=now + ttl)
    store.issue(share, grants.hash_token(token))
    return share


def test_two_instances_racing_for_one_share_link_exactly_one_wins(stores):
    one, two = stores
    for _ in range(10):
        token = grants.new_token()
        new_share(one, token)
        outcomes = []

        def take(store):
            try:
                store.consume(grants.hash_token(token), grants.hash_token("s"), "ip",
                              time.time())
                outcomes.append("won")
            except Refused as e:
                outcomes.append(e.reason)
        threads = [threading.Thread(target=take, args=(s,)) for s in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["this share link has already been used", "won"]


def test_an_expired_or_revoked_link_is_refused_with_its_reason(stores):
    store = stores[0]
    expired = grants.new_token()
    new_share(store, expired, ttl=-1)
    with pytest.raises(Refused, match="this share link has expired"):
        store.consume(grants.hash_token(expired), "x", "ip", time.time())
    revoked = grants.new_token()
    share = new_share(store, revoked)
    store.end(share.id, "revoked by t", time.time())
    with pytest.raises(Refused, match=r"has ended \(revoked by t\)"):
        store.consume(grants.hash_token(revoked), "x", "ip", time.time())
    assert store.get(share.id).state(time.time()) == "revoked"


def test_the_owners_next_connection_replaces_the_last_and_only_its_own_end_clears_it(stores):
    one, two = stores
    console = grants.new_id()
    one.set_live(console, ("127.0.0.1", 4822), "$first", time.time())
    two.set_live(console, ("127.0.0.1", 4823), "$second", time.time())
    assert one.live(console) == (("127.0.0.1", 4823), "$second")
    one.clear_live(console, "$first")          # the old connection ending changes nothing
    assert two.live(console) == (("127.0.0.1", 4823), "$second")
    two.clear_live(console, "$second")
    assert one.live(console) is None
