"""A slow agent cannot stall the service: while an oVirt engine hangs, consoles of other
agents keep opening fast and the oVirt requests answer 504 naming the agent at the agent
timeout; /readyz reuses its database connections instead of opening one per probe."""
from __future__ import annotations

import concurrent.futures
import secrets
import time

import pytest
import requests

from guacbridge.keyring import new_key
from guacbridge.store.guacamole_db import GuacamoleDb, GuacamoleOptions
from guacbridge.store.mysql import MysqlGrantStore
from ovirt_emulator import Engine
from service_fixtures import start_service

pytestmark = pytest.mark.integration
HANGING = 40        # more than asyncio's default executor has threads (at most 32)
STATIC = {"agent": "static", "protocol": "vnc", "hostname": "10.1.2.3", "port": 5901,
          "password": "vnc-secret"}


@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.stop()


def test_a_hanging_ovirt_engine_answers_504_and_other_consoles_keep_opening(
        engine, guacd, tmp_path):
    vm = engine.add_vm("web-12", address="10.1.2.4")
    conf = tmp_path / "guacbridge.toml"
    conf.write_text("[limits]\nagent_timeout = 2\n" + engine.agent_config(timeout=60))
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf))
    ovirt = {"agent": "ovirt", "location": "ams1", "vm": vm["id"]}

    def open_ovirt() -> tuple[int, str, float]:
        started = time.monotonic()
        r = service.api("POST", "/api/v1/consoles", json={"target": ovirt})
        return r.status_code, r.json().get("details", ""), time.monotonic() - started

    try:
        engine.hang()
        with concurrent.futures.ThreadPoolExecutor(HANGING) as threads:
            hanging = [threads.submit(open_ovirt) for _ in range(HANGING)]
            time.sleep(0.5)                 # they are all waiting on the engine now
            latencies = []
            for _ in range(10):             # meanwhile, static consoles open as ever
                started = time.monotonic()
                service.create(STATIC)
                latencies.append(time.monotonic() - started)
            answers = [f.result(timeout=30) for f in hanging]
        print(f"static consoles during the hang: max {max(latencies) * 1000:.1f} ms; oVirt "
              f"504s after {min(a[2] for a in answers):.2f}-{max(a[2] for a in answers):.2f} s")
        assert max(latencies) < 1.0, latencies
        assert {(status, details) for status, details, _ in answers} == \
            {(504, "agent ovirt did not answer within 2 s")}
        assert max(seconds for _, _, seconds in answers) < 2 + 2
        engine.release()                    # the engine is back: so are its consoles
        deadline = time.monotonic() + 20
        while (status := open_ovirt()[0]) != 201 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status == 201
    finally:
        engine.release()
        service.stop()


def connections(root) -> int:
    with root.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
        return int(cur.fetchone()[1])


def test_readyz_reuses_its_database_connections(guacd, mariadb, tmp_path):
    suffix = secrets.token_hex(4)
    ours = mariadb.create_database(f"gb_{suffix}")
    theirs = mariadb.create_database(f"guac_{suffix}")
    MysqlGrantStore(ours).create_tables()
    GuacamoleDb(theirs, GuacamoleOptions(web_url="https://guac.example")).create_schema()
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_MYSQL_URL=ours, GUACBRIDGE_SECRET_KEYS=new_key("r"),
                            GUACBRIDGE_GUACAMOLE_DB_URL=theirs,
                            GUACBRIDGE_GUACAMOLE_URL="https://guac.example")
    root = mariadb.root()
    try:
        def ready() -> dict:
            r = requests.get(service.base_url + "/readyz", timeout=10)
            assert r.status_code == 200, r.text
            return r.json()["checks"]
        assert ready()["guacamole_db"] == "ok"         # the first probe connects
        before = connections(root)
        for _ in range(20):
            assert ready() == {"guacd": "ok", "grant_store": "ok", "guacamole_db": "ok"}
        opened = connections(root) - before
        print(f"20 /readyz probes opened {opened} new database connection(s)")
        assert opened <= 1
    finally:
        root.close()
        service.stop()
