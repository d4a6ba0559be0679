"""The MySQL grant store on real MariaDB: shared by instances, one-time across them, and back
after the database restarts."""
import asyncio
import subprocess
import sys
import threading
import time
import uuid

import pytest
from db_fixtures import TEST_KEYS

from guacbridge import config, grants
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.grants import Grant, Refused, Target
from guacbridge.store.mysql import MysqlGrantStore
from guacbridge.store.sql import StoreUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def mysql_url(mariadb):
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    MysqlGrantStore(url).create_tables()
    return url


def issue(store, token):
    now = time.time()
    grant = Grant(id=grants.new_id(), target=Target("vnc", {"hostname": "h", "port": "5900"}),
                  owner="t", user=None, created_at=now, use_by=now + 60, duration=60,
                  max_duration=120)
    store.issue(grant, grants.hash_token(token), None)
    return grant


def test_two_instances_racing_for_one_token_exactly_one_wins(mysql_url):
    one, two = MysqlGrantStore(mysql_url, TEST_KEYS), MysqlGrantStore(mysql_url, TEST_KEYS)
    for round_ in range(40):
        token = f"token-{round_}"
        issue(one, token)
        wins, refusals = [], []
        barrier = threading.Barrier(4)

        def race(store, tunnel):
            barrier.wait()
            try:
                wins.append(store.consume(grants.hash_token(token), None, time.time(),
                                          tunnel_id=tunnel))
            except Refused as e:
                refusals.append(e.reason)
        threads = [threading.Thread(target=race, args=(s, f"t{i}"))
                   for i, s in enumerate((one, two, one, two))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1, (round_, wins, refusals)
        assert refusals == ["this console link has already been used"] * 3


def test_the_core_runs_on_mysql_like_on_sqlite(mysql_url):
    settings = config.load(env={}, mysql_url=mysql_url)
    parts = assemble(settings, MysqlGrantStore(mysql_url, TEST_KEYS), load_agents(settings))

    async def scenario():
        reply = await parts.consoles.open({"target": {"hostname": "10.0.0.5", "password": "pw"},
                                     "extra_token": "x"}, owner="t")
        grant, secret = await parts.sessions.open_page(reply["id"],
                                                         reply["websocket"]["token"], "x")
        resumed = await parts.sessions.resume(reply["id"], secret, "tun-1")
        extended = await parts.consoles.extend(reply["id"], 600)
        closed = await parts.consoles.close(reply["id"], "done")
        return grant, resumed, extended, closed
    grant, resumed, extended, closed = asyncio.run(scenario())
    assert grant.has_session and grant.has_extra and resumed.grant.live_tunnel == "tun-1"
    assert extended["state"] == "connecting" and closed["close_reason"] == "done"   # no frame


def test_the_store_comes_back_after_a_database_restart(mariadb, mysql_url):
    store = MysqlGrantStore(mysql_url, TEST_KEYS)
    settings = config.load(env={}, mysql_url=mysql_url)
    parts = assemble(settings, store, load_agents(settings))
    before = issue(store, "before-restart")
    mariadb.stop()
    try:
        with pytest.raises(StoreUnavailable) as e:
            store.get(before.id)
        assert mariadb.password not in str(e.value)
        with pytest.raises(ConsoleError) as e:       # the API answers 503, not a crash
            asyncio.run(parts.consoles.open({"target": {"hostname": "10.0.0.5"}}, owner="t"))
        assert e.value.status == 503
    finally:
        mariadb.start()
    assert store.get(before.id).id == before.id
    assert store.consume(grants.hash_token("before-restart"), None, time.time()).consumed_at


def test_initdb_creates_our_tables_and_the_guacamole_schema(mariadb, tmp_path):
    ours = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    theirs = mariadb.create_database(f"guac_{uuid.uuid4().hex[:8]}")
    env = {"GUACBRIDGE_MYSQL_URL": ours, "GUACBRIDGE_GUACAMOLE_DB_URL": theirs,
           "GUACBRIDGE_GUACAMOLE_URL": "http://guac.example/guacamole", "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "guacbridge.cli", "initdb", *a],
                                    env=env, capture_output=True, text=True, timeout=60)
    first = run("--guacamole-schema")
    assert first.returncode == 0, first.stderr
    assert mariadb.password not in first.stdout + first.stderr
    with mariadb.root(theirs.rsplit("/", 1)[1]) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        tables = {row[0] for row in cur.fetchall()}
    assert {"guacamole_connection", "guacamole_connection_permission", "guacamole_entity",
            "guacamole_connection_history"} <= tables
    again = run("--guacamole-schema")
    assert again.returncode == 1 and "already has Guacamole tables" in again.stderr
    assert run().returncode == 0                      # our own tables: idempotent
