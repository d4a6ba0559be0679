"""Agents on real parts: oVirt through the real ovirt-engine-sdk-python against an emulator
of the engine's REST calls, BMC presets and inventory, the legacy agent route, and an oVirt
job on the broker that ends in a console whose VNC password is the engine's ticket."""
from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import urllib.parse

import pika
import pytest

from guacbridge import config
from guacbridge.agents import AgentError
from guacbridge.agents.bmc import BmcAgent
from guacbridge.agents.ovirt import OvirtAgent
from guacbridge.demo import free_port
from ovirt_emulator import Engine

pytestmark = pytest.mark.integration


@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.stop()


def ovirt(engine, **conf):
    settings = config.load(env={}, agents={"ovirt": {"ams1": {
        "url": engine.url, "username": "admin@internal", "password": "secret", **conf}}})
    return OvirtAgent(settings)


def resolve(agent, **target):
    return asyncio.run(agent.resolve({"agent": "ovirt", "location": "ams1", **target}))


def logins(engine):
    return [r for r in engine.requests if r["path"].endswith("/sso/oauth/token")]


def test_a_running_vm_by_name_gives_its_vnc_console_and_a_short_ticket(engine):
    vm = engine.add_vm("web-12", address="192.0.2.10", port=5901)
    agent = ovirt(engine)
    resolved = resolve(agent, vm="web-12")
    params = resolved.target.params
    assert resolved.target.protocol == "vnc"
    assert (params["hostname"], params["port"]) == ("192.0.2.10", "5901")
    assert len(params["password"]) == 8
    assert abs(resolved.expires_at - (time.time() + 120)) < 5
    ticket, = [r for r in engine.requests if r["path"].endswith("/ticket")]
    assert "<expiry>120</expiry>" in ticket["body"]
    consoles, = [r for r in engine.requests if r["path"].endswith("/graphicsconsoles")]
    assert consoles["query"] == {"current": ["true"]}
    assert resolve(agent, vm=vm["id"]).target.params["hostname"] == "192.0.2.10"   # by id
    assert len(logins(engine)) == 1                  # one connection per engine, reused


def test_unknown_and_stopped_vms_get_clear_errors(engine):
    engine.add_vm("db-1", status="down")
    agent = ovirt(engine)
    for target, status, words in [
            ({"vm": "nope"}, 404, "no VM named 'nope' in ams1"),
            ({"vm": "00000000-0000-0000-0000-000000000000"}, 404, "no VM"),
            ({"vm": "db-1"}, 409, "VM db-1 is not running (status down): start it and retry"),
            ({"vm": "x", "location": "lon9"}, 400, "unknown oVirt location 'lon9'"),
            ({"vm": ""}, 400, "target.vm is required")]:
        with pytest.raises(AgentError) as e:
            resolve(agent, **target)
        assert e.value.status == status and words in e.value.details, e.value.details


def test_a_ticket_refused_because_the_vm_just_stopped_is_a_409(engine):
    engine.add_vm("web-13")["stops_before_ticket"] = True
    with pytest.raises(AgentError) as e:          # the engine's own 409 fault, via the SDK
        resolve(ovirt(engine), vm="web-13")
    assert e.value.status == 409 and "web-13 is not running" in e.value.details


def test_an_expired_token_is_renewed_by_logging_in_again(engine):
    engine.add_vm("web-12")
    agent = ovirt(engine)
    resolve(agent, vm="web-12")
    engine.revoke_tokens()                          # the engine answers 401 now
    assert resolve(agent, vm="web-12").target.params["password"]
    assert len(logins(engine)) == 2


def test_a_refused_login_and_an_unreachable_engine_are_502_without_credentials(engine):
    engine.add_vm("web-12")
    with pytest.raises(AgentError) as e:
        resolve(ovirt(engine, password="wrong-password"), vm="web-12")
    assert e.value.status == 502 and "refused guacbridge's login" in e.value.details
    assert "wrong-password" not in e.value.details and "admin@internal" not in e.value.details
    settings = config.load(env={}, agents={"ovirt": {"ams1": {
        "url": f"http://127.0.0.1:{free_port()}/ovirt-engine/api", "username": "u",
        "password": "p-secret"}}})
    with pytest.raises(AgentError) as e:
        resolve(OvirtAgent(settings), vm="web-12")
    assert e.value.status == 502 and "unreachable" in e.value.details
    assert "p-secret" not in e.value.details


def test_a_blank_console_address_falls_back_to_the_host(engine):
    engine.hosts["h1"] = "198.51.100.7"
    engine.add_vm("web-14", address="", host="h1")
    assert resolve(ovirt(engine), vm="web-14").target.params["hostname"] == "198.51.100.7"


def test_one_connection_serves_concurrent_requests(engine):
    for n in range(8):
        engine.add_vm(f"vm-{n}")
    agent = ovirt(engine)

    async def many():
        return await asyncio.gather(*(agent.resolve({"agent": "ovirt", "location": "ams1",
                                                      "vm": f"vm-{n}"}) for n in range(8)))
    results = asyncio.run(many())
    assert len({r.target.params["password"] for r in results}) == 8
    assert len(logins(engine)) == 1


# -- BMC -----------------------------------------------------------------------------------

def bmc(tmp_path, **conf):
    return BmcAgent(config.load(env={}, agents={"bmc": conf}))


def test_bmc_presets_and_inventory(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("calvin\n")
    inventory = tmp_path / "inventory.toml"
    inventory.write_text('[servers.web-12]\nvendor = "idrac"\naddress = "10.0.9.12"\n'
                         f'password_file = "{pw}"\n')
    agent = bmc(tmp_path, inventory=str(inventory),
                servers={"db-1": {"vendor": "supermicro", "address": "10.0.9.1",
                                  "password": "ADMIN"}})
    run = lambda **t: asyncio.run(agent.resolve({"agent": "bmc", **t}))
    web = run(server="web-12").target
    assert (web.protocol, web.params) == ("vnc", {"hostname": "10.0.9.12", "port": "5901",
                                                  "password": "calvin"})
    assert run(server="db-1").target.params["port"] == "5900"
    sol = run(vendor="idrac-sol", address="10.0.9.13", username="root", password="x").target
    assert sol.protocol == "ssh" and sol.params["command"] == "console com2"
    ipmi = run(vendor="ipmi-sol", address="10.0.9.14", username="admin", password="x").target
    assert (ipmi.protocol, ipmi.params) == ("serial", {
        "line": "ipmi-sol", "hostname": "10.0.9.14", "port": "623", "username": "admin",
        "password": "x"})
    for target, status, words in [({"server": "nope"}, 404, "no server 'nope'"),
                                  ({"vendor": "hp"}, 400, "vendor must be one of"),
                                  ({"server": "db-1", "address": "x"}, 400, "not both"),
                                  ({"vendor": "idrac"}, 400, "address is required")]:
        with pytest.raises(AgentError) as e:
            run(**target)
        assert e.value.status == status and words in e.value.details


# -- the legacy route --------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy_services(guacd, tmp_path_factory):
    from service_fixtures import start_service
    out = {}
    for encoding in ("url", "base64"):
        workdir = tmp_path_factory.mktemp(f"legacy-{encoding}")
        conf = workdir / "guacbridge.toml"
        conf.write_text(f'[legacy]\npassword_encoding = "{encoding}"\n'
                        '[legacy.keys]\nams1 = "key-for-ams1"\nlon1 = "key-for-lon1"\n')
        out[encoding] = start_service(workdir, f"{guacd.host}:{guacd.port}",
                                      GUACBRIDGE_CONFIG=str(conf))
    yield out
    for service in out.values():
        service.stop()


def legacy_path(host, key, password, port, location="ams1", name="web-12"):
    return (f"/{host}/skey/{key}/id/{name}/ovirt/pass/{password}/port/{port}"
            f"/location/{location}")


def console_comes_up(tunnel, url):
    from test_cli import reply_for

    async def scenario():
        async with tunnel(reply_for(url)) as t:
            return await t.until("sync")
    return "error" not in asyncio.run(scenario())


def test_the_legacy_route_makes_a_working_console(legacy_services, vnc_desktop, tunnel):
    service = legacy_services["url"]
    password = urllib.parse.quote(vnc_desktop.password, safe="")
    r = service.api("GET", legacy_path(vnc_desktop.host, "key-for-ams1", password,
                                       vnc_desktop.port), key=None)
    body = r.json()
    assert r.status_code == 200 and body["Result"] == "OK" and "web-12" in body["Debug"]
    assert console_comes_up(tunnel, body["Message"])
    log = service.log_text()
    assert vnc_desktop.password not in log and "key-for-ams1" not in log
    assert "/skey/***/" in log and "/pass/***/" in log


def test_the_legacy_route_decodes_base64_passwords(legacy_services, vnc_desktop, tunnel):
    service = legacy_services["base64"]
    encoded = base64.urlsafe_b64encode(vnc_desktop.password.encode()).decode().rstrip("=")
    r = service.api("GET", legacy_path(vnc_desktop.host, "key-for-ams1", encoded,
                                       vnc_desktop.port), key=None)
    assert r.json()["Result"] == "OK"
    assert console_comes_up(tunnel, r.json()["Message"])
    bad = service.api("GET", legacy_path("h", "key-for-ams1", "!!notb64", 5900), key=None)
    assert bad.status_code == 400 and "not valid base64" in bad.json()["Debug"]


@pytest.mark.parametrize("path, status", [
    (legacy_path("h", "wrong-key", "pw", 5900), 403),
    (legacy_path("h", "key-for-lon1", "pw", 5900), 403),      # another location's key
    (legacy_path("h", "key-for-ams1", "pw", 5900, location="nowhere"), 403),
    (legacy_path("h", "key-for-ams1", "pw", "59x0"), 400),
    (legacy_path("h", "key-for-ams1", "pw", 70000), 400),
    (legacy_path("bad host!", "key-for-ams1", "pw", 5900), 400),
    ("/h/skey/key-for-ams1/id/x/ovirt/pass/pw/port/5900/location/ams1/../../../etc", 404),
    ("/h/skey/key-for-ams1%2F..%2F/id/x/ovirt/pass/pw/port/5900/location/ams1", 403),
])
def test_the_legacy_route_refuses_bad_keys_ports_and_path_tricks(legacy_services, path,
                                                                 status):
    service = legacy_services["url"]
    r = service.api("GET", path, key=None)
    assert r.status_code == status, r.text
    if status != 404:
        assert r.json()["Result"] == "ERROR" and r.json()["Message"] == ""


def test_the_legacy_route_is_off_unless_configured(service):
    r = service.api("GET", legacy_path("h", "k", "pw", 5900), key=None)
    assert r.status_code == 404


# -- an oVirt job end to end ----------------------------------------------------------------

def test_an_ovirt_job_on_the_broker_ends_in_a_console_opened_with_the_ticket(
        engine, guacd, rabbitmq, tmp_path, tunnel):
    from guacbridge import demo
    from service_fixtures import start_service
    desktop = demo.start_desktop(tmp_path / "desktop", password="notticket")
    try:
        vm = engine.add_vm("web-12", address=desktop.host, port=desktop.port)

        def ticket_is_the_vnc_password(vm_, value, expiry):
            desktop_passwd = desktop.workdir / "passwd"
            desktop_passwd.write_bytes(subprocess.run(
                ["vncpasswd", "-f"], input=value.encode() + b"\n", capture_output=True,
                check=True).stdout)
        engine.on_ticket = ticket_is_the_vnc_password
        conf = tmp_path / "guacbridge.toml"
        conf.write_text(engine.agent_config())
        amqp = rabbitmq.new_vhost()
        service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                                GUACBRIDGE_CONFIG=str(conf), GUACBRIDGE_AMQP_URL=amqp)
        try:
            connection = pika.BlockingConnection(pika.URLParameters(amqp))
            channel = connection.channel()
            channel.confirm_delivery()
            replies = channel.queue_declare("", exclusive=True).method.queue
            deadline = time.monotonic() + 20
            while True:                          # until the service declared its exchange
                try:
                    channel.basic_publish("guacbridge.jobs", "ovirt", json.dumps({
                        "version": 1, "job_id": "ovirt-e2e-1", "action": "open",
                        "target": {"agent": "ovirt", "location": "ams1", "vm": "web-12"}}
                    ).encode(), pika.BasicProperties(reply_to=replies, correlation_id="c1",
                                                     message_id="m1", delivery_mode=2,
                                                     user_id="guest"))   # its login
                    break
                except pika.exceptions.ChannelClosedByBroker:
                    assert time.monotonic() < deadline
                    channel = connection.channel()
                    channel.confirm_delivery()
                    replies = channel.queue_declare("", exclusive=True).method.queue
                    time.sleep(0.3)
            reply = None
            for method, props, body in channel.consume(replies, auto_ack=True,
                                                       inactivity_timeout=20):
                reply = json.loads(body) if body else None
                break
            connection.close()
            assert reply and reply["result"] is True, reply
            assert reply["job_id"] == "ovirt-e2e-1" and reply["target"]["hostname"] == \
                desktop.host
            # The link must be used within the ticket's life, and guacd logs in with it.
            assert console_comes_up(tunnel, reply["url"])
            assert "notticket" not in service.log_text()
        finally:
            service.stop()
    finally:
        desktop.stop()
