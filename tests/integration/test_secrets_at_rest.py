"""Connection secrets at rest: what the grant stores' files and tables hold is sealed, a console
still reaches its desktop, keys rotate, and a missing or wrong key is said plainly."""
import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
import uuid

import pytest
from db_fixtures import TEST_KEY, TEST_KEYS

from guacbridge import grants
from guacbridge.grants import Grant, Target
from guacbridge.keyring import KeyRing, SecretsError, new_key, parse_key
from guacbridge.store.mysql import MysqlGrantStore
from guacbridge.store.sqlite import SqliteGrantStore

pytestmark = pytest.mark.integration
GUACBRIDGE = [sys.executable, "-m", "guacbridge.cli"]
PASSWORD = "correct-horse-battery-staple-7731"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END"


def grant_for(params: dict) -> Grant:
    now = time.time()
    return Grant(id=grants.new_id(), target=Target("ssh", params), owner="t", user=None,
                 created_at=now, use_by=now + 60, duration=60, max_duration=120)


def ssh_params() -> dict:
    return {"hostname": "10.0.0.5", "port": "22", "username": "root", "password": PASSWORD,
            "private-key": PRIVATE_KEY, "passphrase": PASSWORD[::-1]}


def files_bytes(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file()
                    and p.name.startswith("guacbridge.sqlite3"))


def test_the_sqlite_file_holds_no_password_and_the_console_still_connects(
        guacd, vnc_target, tunnel, tmp_path):
    from service_fixtures import start_service
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}")
    try:
        reply = service.create(vnc_target)
        other = service.create({"agent": "static", "protocol": "ssh", "hostname": "10.0.0.5",
                                "username": "root", "password": PASSWORD})

        async def scenario():
            async with tunnel(reply) as t:
                return await t.until("sync")
        seen = asyncio.run(scenario())
        assert "error" not in seen and {"size", "img"} <= seen.keys()   # desktop drawn
        assert service.get(other["id"])["target"] == {"protocol": "ssh", "port": "22",
                                                      "hostname": "10.0.0.5",
                                                      "username": "root"}
    finally:
        service.stop()
    data = tmp_path / "svc" / "data"
    stored = files_bytes(data)
    assert reply["id"].encode() in stored                  # it is the right file
    assert PASSWORD.encode() not in stored and vnc_target["password"].encode() not in stored
    key_file = data / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600   # made at first start, private
    assert PASSWORD not in service.log_text()


def test_mariadb_holds_no_secret_and_a_blob_moved_to_another_row_does_not_open(mariadb):
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    store = MysqlGrantStore(url, TEST_KEYS)
    store.create_tables()
    first, second = grant_for(ssh_params()), grant_for({"hostname": "10.0.0.6"})
    store.issue(first, grants.hash_token("a"), None)
    store.issue(second, grants.hash_token("b"), None)
    assert store.get(first.id).target.params == ssh_params()
    database = url.rsplit("/", 1)[1]
    with mariadb.root(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM console_grant")
        everything = repr(cur.fetchall())
        cur.execute("UPDATE console_grant SET params = (SELECT params FROM (SELECT params"
                    " FROM console_grant WHERE id = %s) AS x) WHERE id = %s",
                    (first.id, second.id))
    assert first.id in everything
    for secret in (PASSWORD, PASSWORD[::-1], "b3BlbnNzaC1rZXktdjEAAAAA"):
        assert secret not in everything
    with pytest.raises(SecretsError) as e:
        store.get(second.id)
    assert "do not open with key 'test'" in str(e.value) and second.id in str(e.value)
    assert PASSWORD not in str(e.value)

    rotated = MysqlGrantStore(url, KeyRing([parse_key(new_key("k2")), parse_key(TEST_KEY)],
                                           "k2 first, then test"))
    assert rotated.rekey() == (1, 0, [second.id])     # the moved blob is named, not resealed
    assert rotated.get(first.id).target.params == ssh_params()


def test_instances_sharing_mysql_refuse_to_start_without_a_shared_key(mariadb, tmp_path):
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    env = {"GUACBRIDGE_MYSQL_URL": url, "GUACBRIDGE_DATA_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run(GUACBRIDGE + ["serve"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2
    assert "secret_keys" in out.stderr and "same key on every instance" in out.stderr
    assert mariadb.password not in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "secret.key").exists()      # no key of its own: it would differ


def test_rotation_add_the_new_key_first_rekey_then_drop_the_old_one(tmp_path):
    old, new = new_key("k1"), new_key("k2")
    path = tmp_path / "guacbridge.sqlite3"
    store = SqliteGrantStore(path, KeyRing([parse_key(old)], "k1 only"))
    grant = grant_for(ssh_params())
    store.issue(grant, grants.hash_token("t"), None)

    def run(*keys):
        env = {"GUACBRIDGE_DATA_DIR": str(tmp_path), "GUACBRIDGE_SECRET_KEYS": ",".join(keys),
               "PATH": "/usr/bin:/bin"}
        return subprocess.run(GUACBRIDGE + ["rekey"], env=env, capture_output=True,
                              text=True, timeout=30)
    both = run(new, old)                           # step 1: new key first, old still there
    assert both.returncode == 0, both.stderr
    assert "sealed 1 console(s) with key k2; 0 already were" in both.stdout
    only_new = SqliteGrantStore(path, KeyRing([parse_key(new)], "k2 only"))
    assert only_new.get(grant.id).target.params == ssh_params()     # step 2: old key gone
    again = run(new)
    assert "sealed 0 console(s) with key k2; 1 already were" in again.stdout

    only_old = SqliteGrantStore(path, KeyRing([parse_key(old)], "k1 only"))
    with pytest.raises(SecretsError) as e:
        only_old.get(grant.id)
    assert "sealed with key 'k2', which is not configured" in str(e.value)


def test_rows_from_before_sealing_are_read_and_rekey_seals_them(tmp_path):
    store = SqliteGrantStore(tmp_path / "guacbridge.sqlite3")
    grant = grant_for(ssh_params())
    store.issue(grant, grants.hash_token("t"), None)
    with sqlite3.connect(store.path) as db:        # what an older version wrote
        db.execute("UPDATE console_grant SET params = ? WHERE id = ?",
                   (json.dumps(ssh_params()), grant.id))
    assert store.get(grant.id).target.params == ssh_params()
    assert store.rekey() == (1, 0, [])
    with sqlite3.connect(store.path) as db:        # the log's pages go into the file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert PASSWORD.encode() not in files_bytes(tmp_path)     # overwritten, not just freed
    assert store.get(grant.id).target.params == ssh_params()


def test_a_wrong_key_is_a_clear_error_in_the_api_and_the_browser(guacd, vnc_target, tunnel,
                                                                 tmp_path):
    from service_fixtures import start_service
    first_key, same_id_other_bytes = new_key("k1"), new_key("k1")
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_SECRET_KEYS=first_key)
    try:
        reply = service.create(vnc_target)
    finally:
        service.stop()
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_SECRET_KEYS=same_id_other_bytes)
    try:
        r = service.api("GET", f"/api/v1/consoles/{reply['id']}")
        port = int(service.base_url.rsplit(":", 1)[1])
        reply["websocket"]["port"] = port

        async def scenario():
            async with tunnel(reply) as t:
                return await t.closing()
        status, message, _ = asyncio.run(scenario())
    finally:
        service.stop()
    assert r.status_code == 500 and r.json()["result"] is False
    assert "do not open with key 'k1'" in r.json()["details"]
    assert status == 0x0200 and "connection details cannot be read" in message
    log = service.log_text()
    assert "do not open with key 'k1'" in log
    for secret in (vnc_target["password"], first_key.split(":")[1],
                   same_id_other_bytes.split(":")[1]):
        assert secret not in log and secret not in r.text
    assert not (tmp_path / "svc" / "data" / "secret.key").exists()   # keys were configured


@pytest.mark.parametrize("text, words", [
    ("nocolon", "<id>:<base64 of 32 bytes>"),
    ("k1:not base64!", "not valid base64"),
    ("k1:" + "QUJD", "must be 32 bytes"),
])
def test_a_malformed_key_is_a_configuration_error_that_does_not_echo_it(text, words, tmp_path):
    env = {"GUACBRIDGE_DATA_DIR": str(tmp_path), "GUACBRIDGE_SECRET_KEYS": text,
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run(GUACBRIDGE + ["rekey"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2 and words in out.stderr and "secret_keys" in out.stderr
    assert text.partition(":")[2] not in out.stderr or not text.partition(":")[2]
    assert "Traceback" not in out.stderr and os.listdir(tmp_path) == []
