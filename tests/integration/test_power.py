"""Power beside the console, on the real parts: the oVirt agent through ovirt-engine-sdk-python
against the engine emulator (each action arrives as the SDK's VM service call), the BMC agent
through pyghmi against OpenIPMI's ipmi_sim (each action reaches its chassis control), the API's
``power`` scope and the ``"power": true`` right, the broker's ``power`` job, and the grant
stores' new column on databases made before it."""
from __future__ import annotations

import secrets
import sqlite3
import time
import uuid

import pytest
from ovirt_emulator import Engine
from test_broker import Producer

import leaks
from guacbridge import apikeys, grants
from guacbridge.grants import Grant, Target

pytestmark = pytest.mark.integration
SCOPES = {"operator": ["create", "read", "power"], "viewer": ["create", "read"],
          "stranger": ["create", "read", "power"]}
OVIRT = {"agent": "ovirt", "location": "ams1", "vm": "web-12"}
BMC = {"agent": "bmc", "server": "web-12"}


@pytest.fixture(scope="module")
def engine():
    e = Engine()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def keys():
    found = {name: secrets.token_urlsafe(32) for name in SCOPES}
    leaks.remember(*found.values())
    return found


@pytest.fixture(scope="module")
def powered(guacd, engine, bmc_sim, rabbitmq, keys, tmp_path_factory):
    """One service with an oVirt engine, a BMC inventory (web-12 with IPMI, db-1 without),
    keys with and without the power scope, and a broker."""
    from service_fixtures import start_service
    workdir = tmp_path_factory.mktemp("power-service")
    blocks = [apikeys.toml_block(apikeys.ApiKey(name, apikeys.digest(keys[name]),
                                                frozenset(SCOPES[name]))) for name in SCOPES]
    conf = workdir / "guacbridge.toml"
    conf.write_text(
        engine.agent_config() + "\n"
        '[agents.bmc.servers.web-12]\nvendor = "idrac"\naddress = "127.0.0.1"\n'
        f'password = "vnc-pw"\nipmi = true\nipmi_port = {bmc_sim.port}\n'
        f'ipmi_username = "{bmc_sim.username}"\nipmi_password = "{bmc_sim.password}"\n\n'
        '[agents.bmc.servers.db-1]\nvendor = "idrac"\naddress = "127.0.0.1"\n\n'
        + "\n".join(blocks))
    amqp = rabbitmq.new_vhost()
    service = start_service(workdir, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(conf), GUACBRIDGE_AMQP_URL=amqp)
    service.amqp = amqp
    yield service
    service.stop()


def open_console(service, target, key="default", **request):
    r = service.api("POST", "/api/v1/consoles", key=key, json={"target": target, **request})
    assert r.status_code == 201, r.text
    return r.json()


def events(service, console_id, kind="power"):
    r = service.api("GET", f"/api/v1/consoles/{console_id}/events")
    return [e["data"] for e in r.json()["events"] if e["kind"] == kind]


def test_ovirt_power_state_and_each_action_reach_the_engine_as_the_sdks_calls(powered,
                                                                               engine):
    vm = engine.add_vm("web-12", address="127.0.0.1", port=5999)
    reply = open_console(powered, OVIRT, power=True)
    assert reply["power"] is True
    path = f"/api/v1/consoles/{reply['id']}/power"
    r = powered.api("GET", path)
    assert r.status_code == 200, r.text
    assert r.json() == {"result": True, "details": None, "id": reply["id"], "state": "on",
                        "actions": ["on", "shutdown", "off", "reboot", "reset"],
                        "name": "web-12"}
    engine.power_calls.clear()
    for action in ("reset", "reboot", "shutdown", "on", "off"):
        r = powered.api("POST", path, json={"action": action})
        assert r.status_code == 202, r.text
        assert r.json()["action"] == action
    assert engine.power_calls == [("web-12", call) for call in
                                  ("reset", "reboot", "shutdown", "start", "stop")]
    # As the SDK sends them: POST …/vms/{id}/<call> with an <action/> body.
    sent = [(r["path"], r["body"]) for r in engine.requests if r["method"] == "POST"
            and r["path"].startswith(f"/ovirt-engine/api/vms/{vm['id']}/")
            and not r["path"].endswith("/ticket")]
    assert sent == [(f"/ovirt-engine/api/vms/{vm['id']}/{call}", "<action/>\n")
                    for call in ("reset", "reboot", "shutdown", "start", "stop")]
    assert powered.api("GET", path).json()["state"] == "off"
    refused = powered.api("POST", path, json={"action": "reset"})    # the VM is down now
    assert refused.status_code == 409
    assert refused.json()["details"] == "the engine refused reset for VM web-12 (status down)"
    assert events(powered, reply["id"]) == [
        {"action": a, "by": "API key tests"} for a in ("reset", "reboot", "shutdown", "on",
                                                       "off")]
    assert events(powered, reply["id"], "power.failed")[0]["action"] == "reset"


def test_bmc_power_over_ipmi_each_action_reaches_the_chassis_control(powered, bmc_sim):
    bmc_sim.set_power(True)
    reply = open_console(powered, BMC, power=True)
    path = f"/api/v1/consoles/{reply['id']}/power"
    r = powered.api("GET", path)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["actions"]) == \
        ("on", ["on", "shutdown", "off", "reset", "cycle"])
    bmc_sim.forget()
    for action in ("reset", "shutdown", "off"):
        assert powered.api("POST", path, json={"action": action}).status_code == 202
    assert powered.api("GET", path).json()["state"] == "off"
    for action in ("on", "cycle"):
        assert powered.api("POST", path, json={"action": action}).status_code == 202
    assert bmc_sim.actions() == ["set reset 1", "set shutdown 1", "set power 0",
                                 "set power 1", "set power 0"]
    assert [e["action"] for e in events(powered, reply["id"])] == \
        ["reset", "shutdown", "off", "on", "cycle"]
    assert bmc_sim.password not in powered.log_text()
    assert bmc_sim.password not in str(powered.get(reply["id"]))


def test_a_vm_that_is_off_gets_a_console_that_waits_for_its_start(powered, engine, tunnel):
    import asyncio
    vm = engine.add_vm("db-7", status="down", address="127.0.0.1", port=5998)
    target = {**OVIRT, "vm": "db-7"}
    r = powered.api("POST", "/api/v1/consoles", json={"target": target})
    assert r.status_code == 409 and "is not running" in r.json()["details"]
    reply = open_console(powered, target, power=True)
    assert reply["target"] == {"protocol": ""} and reply["state"] == "pending"
    path = f"/api/v1/consoles/{reply['id']}/power"
    assert powered.api("GET", path).json()["state"] == "off"

    async def refused_before_start():
        async with tunnel(reply) as t:
            return await t.closing()
    status, message, _ = asyncio.run(refused_before_start())
    assert message.startswith("the server is off: start it first"), (status, message)
    # A tunnel with the token alone ends its console, as after any failed first connection:
    # API clients start the server first; the page waits for its Start by itself.
    assert powered.get(reply["id"])["state"] == "closed"
    reply = open_console(powered, target, power=True)
    path = f"/api/v1/consoles/{reply['id']}/power"
    engine.power_calls.clear()
    started = powered.api("POST", path, json={"action": "on"})
    assert started.status_code == 202, started.text
    assert engine.power_calls == [("db-7", "start")] and vm["status"] == "up"
    located = powered.get(reply["id"])["target"]
    assert (located["protocol"], located["hostname"], located["port"]) == \
        ("vnc", "127.0.0.1", "5998")
    assert [e["hostname"] for e in events(powered, reply["id"], "located")] == ["127.0.0.1"]


def test_power_needs_the_scope_and_a_console_opened_with_power_true(powered, engine, keys):
    if not any(vm["name"] == "web-12" for vm in engine.vms.values()):
        engine.add_vm("web-12", address="127.0.0.1", port=5999)
    for vm in engine.vms.values():
        vm["status"] = "up"
    mine = open_console(powered, OVIRT, key=keys["operator"], power=True)
    plain = open_console(powered, OVIRT, key=keys["operator"])
    assert plain["power"] is False
    viewer = open_console(powered, OVIRT, key=keys["viewer"], power=True)
    path = "/api/v1/consoles/{}/power"
    # Without the scope: 403, whatever the console.
    for method, body in (("GET", None), ("POST", {"action": "reset"})):
        r = powered.api(method, path.format(viewer["id"]), key=keys["viewer"], json=body)
        assert r.status_code == 403
        assert "lacks the scope 'power'" in r.json()["details"]
    # Without the right, or another owner's: 404.
    r = powered.api("POST", path.format(plain["id"]), key=keys["operator"],
                    json={"action": "reset"})
    assert r.status_code == 404
    assert r.json()["details"] == (f'console {plain["id"]} has no power control (open it with'
                                   ' "power": true)')
    r = powered.api("GET", path.format(mine["id"]), key=keys["stranger"])
    assert r.status_code == 404 and r.json()["details"] == f"no console with id {mine['id']}"
    # An action the agent does not offer, and agents or targets without power control.
    r = powered.api("POST", path.format(mine["id"]), key=keys["operator"],
                    json={"action": "cycle"})
    assert r.status_code == 400
    assert r.json()["details"] == "action must be one of on, shutdown, off, reboot, reset"
    for target, words in (
            ({"agent": "static", "hostname": "127.0.0.1", "port": 5999},
             "power: agent static has no power control for this target"),
            ({"agent": "bmc", "server": "db-1"},
             "power: agent bmc has no power control for this target")):
        r = powered.api("POST", "/api/v1/consoles", json={"target": target, "power": True})
        assert r.status_code == 400 and r.json()["details"] == words
    r = powered.api("POST", "/api/v1/consoles", json={"target": OVIRT, "power": "yes"})
    assert r.status_code == 400 and r.json()["details"] == "power must be true or false"
    # A closed console's power is gone with it.
    powered.delete(mine["id"])
    r = powered.api("GET", path.format(mine["id"]), key=keys["operator"])
    assert r.status_code == 409 and "has closed" in r.json()["details"]


def test_a_power_job_on_the_broker_acts_on_the_producers_own_console(powered, engine):
    vm = next(v for v in engine.vms.values() if v["name"] == "web-12")
    vm["status"] = "up"
    producer = Producer(powered.amqp, replies=f"power.replies.{uuid.uuid4().hex[:6]}")
    try:
        producer.wait_for_topology()
        opened = {"version": 1, "job_id": f"power-open-{uuid.uuid4().hex[:6]}",
                  "action": "open", "target": OVIRT, "power": True}
        producer.publish(opened, routing_key="ovirt")
        [(_, reply)] = producer.replies(1)
        assert reply["result"] is True and reply["power"] is True, reply
        engine.power_calls.clear()
        job = {"version": 1, "job_id": f"power-{uuid.uuid4().hex[:6]}", "action": "power",
               "console_id": reply["id"], "power_action": "reboot"}
        producer.publish(job, routing_key="ovirt")
        [(correlation, pressed)] = producer.replies(1)
        assert correlation == job["job_id"]
        assert pressed["result"] is True and pressed["action"] == "reboot", pressed
        assert engine.power_calls == [("web-12", "reboot")]
        assert events(powered, reply["id"]) == [
            {"action": "reboot", "by": f"job from {reply['owner']}"}]
        # A console opened through the API is another owner's: like no console at all.
        other = open_console(powered, OVIRT, power=True)
        producer.publish({**job, "job_id": f"power-{uuid.uuid4().hex[:6]}",
                          "console_id": other["id"]}, routing_key="ovirt")
        time.sleep(1)
        assert engine.power_calls == [("web-12", "reboot")]
    finally:
        producer.connection.close()


def test_a_database_made_before_the_power_column_gets_it(tmp_path, mariadb):
    from db_fixtures import TEST_KEY, TEST_KEYS

    from guacbridge import resources
    from guacbridge.keyring import KeyRing, new_key, parse_key
    from guacbridge.store.mysql import MysqlGrantStore, run_script
    from guacbridge.store.sqlite import SqliteGrantStore
    old = resources.sql("sqlite.sql").replace(
        "    sink_state    TEXT,                   -- provisioning, ready, removed\n"
        "    power_target  TEXT                    -- sealed: the target as asked (power,"
        " follows)\n", "    sink_state    TEXT\n")
    assert "power_target" not in old
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(old)
    stores = [SqliteGrantStore(path, TEST_KEYS)]
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    conn = MysqlGrantStore(url).url.connect()
    run_script(conn, resources.sql("mysql.sql").replace(
        "    power_target  TEXT,                       -- sealed: the target as asked"
        " (power, follows)\n", ""))
    conn.close()
    mysql = MysqlGrantStore(url, TEST_KEYS)
    with pytest.raises(Exception):      # the new version's queries need the column
        mysql.get("x")
    mysql.create_tables()           # what `guacbridge initdb` does after an upgrade
    stores.append(mysql)
    for store in stores:
        now = time.time()
        grant = Grant(id=grants.new_id(), target=Target("vnc", {"hostname": "h"}),
                      owner="t", user=None, created_at=now, use_by=now + 60, duration=60,
                      max_duration=120, power=True)
        store.issue(grant, grants.hash_token(secrets.token_hex(8)), None,
                    {"agent": "bmc", "server": "web-12"})
        assert store.get(grant.id).power is True
        assert store.asked_target(grant.id) == {"agent": "bmc", "server": "web-12"}
    # Key rotation reseals the kept target too: the old key can go afterwards.
    fresh = parse_key(new_key("k-new"))
    store.keys = KeyRing([fresh, parse_key(TEST_KEY)], "rotated")
    store.rekey()
    store.keys = KeyRing([fresh], "new only")
    assert store.asked_target(grant.id) == {"agent": "bmc", "server": "web-12"}
