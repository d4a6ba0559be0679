"""The target policy on a real service: the SSRF set refused with 403 and the rule in
``details``, an explicitly allowed Xvnc still showing its desktop, a key narrower than the
global lists, a VNC repeater's far end, the check again at connect time, and a broker job to
a refused target dead-lettered with the rule as its reason."""
import asyncio
import secrets
import time
from urllib.parse import urlsplit

import leaks
import pytest
from service_fixtures import start_service
from test_broker import broker_env, job  # noqa: F401 - broker_env: its fixture

from guacbridge import apikeys

pytestmark = pytest.mark.integration

PORTAL_KEY = "portal-key-" + secrets.token_urlsafe(16)
CLIENT_FORBIDDEN = 0x0303


def telnet(host, port):
    return {"agent": "static", "protocol": "telnet", "hostname": host, "port": port}


@pytest.fixture(scope="module")
def guarded(guacd, vnc_desktop, tmp_path_factory):
    """The default policy (loopback refused) with only the test desktop allowed, and a
    second key, portal, that may reach VNC ports only."""
    leaks.remember(PORTAL_KEY)
    workdir = tmp_path_factory.mktemp("guarded-service")
    toml = workdir / "guacbridge.toml"
    toml.write_text(apikeys.toml_block(apikeys.from_secret("portal", PORTAL_KEY))
                    + '[policy.api_keys.portal]\nports = ["5900-5999"]\n')
    s = start_service(workdir, f"{guacd.host}:{guacd.port}", GUACBRIDGE_CONFIG=str(toml),
                      GUACBRIDGE_POLICY_ALLOW=f"{vnc_desktop.host}:{vnc_desktop.port}")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def on_mysql(guacd, mariadb, tmp_path_factory):
    """A service on a MariaDB grant store with all of loopback allowed: its dependencies'
    ports stay refused all the same."""
    from guacbridge.keyring import new_key
    from guacbridge.store.mysql import MysqlGrantStore
    url = mariadb.create_database(f"gb_{secrets.token_hex(4)}")
    MysqlGrantStore(url).create_tables()
    s = start_service(tmp_path_factory.mktemp("policy-mysql"), f"{guacd.host}:{guacd.port}",
                      GUACBRIDGE_MYSQL_URL=url, GUACBRIDGE_SECRET_KEYS=new_key("policy"),
                      GUACBRIDGE_POLICY_ALLOW="127.0.0.0/8")
    yield s, urlsplit(url)
    s.stop()


def refusal(service, target, key="default"):
    r = service.api("POST", "/api/v1/consoles", key=key, json={"target": target})
    assert r.status_code == 403, r.text
    assert r.json()["result"] is False
    return r.json()["details"]


@pytest.mark.parametrize("host, port, details", [
    ("169.254.169.254", 80, "169.254.169.254:80 is a link-local address"),
    ("localhost", 5901, "localhost (127.0.0.1:5901) is a loopback address"),
    ("2130706433", 5901, "127.0.0.1:5901 is a loopback address"),
    ("127.0.0.1.", 5901, "127.0.0.1:5901 is a loopback address"),
    ("[::1]", 5901, "[::1]:5901 is a loopback address"),
    ("::ffff:127.0.0.1", 5901, "127.0.0.1:5901 is a loopback address"),
    ("0177.0.0.1", 22, "127.0.0.1:22 is a loopback address"),
])
def test_the_ssrf_set_is_refused_with_the_rule(guarded, host, port, details):
    got = refusal(guarded, telnet(host, port))
    assert got == f"{details}, refused unless policy.allow lists it"


def test_guacds_own_port_is_refused(guarded, guacd):
    got = refusal(guarded, telnet(guacd.host, guacd.port))
    assert got.startswith(f"{guacd.host}:{guacd.port} is a loopback address")


def test_the_dependencies_ports_are_refused_where_loopback_is_allowed(on_mysql, guacd):
    service, db = on_mysql
    assert refusal(service, telnet(db.hostname, db.port)) == (
        f"{db.hostname}:{db.port} is the grant store (guacbridge.mysql_url), refused unless"
        " policy.allow lists that address with its port")
    assert refusal(service, telnet("localhost", guacd.port)) == (
        f"localhost (127.0.0.1:{guacd.port}) is guacd (guacbridge.guacd), refused unless"
        " policy.allow lists that address with its port")
    listen = urlsplit(service.base_url).port
    assert "is guacbridge itself (guacbridge.listen)" in \
        refusal(service, telnet("127.0.0.1", listen))
    assert service.create(telnet("127.0.0.1", 2323))["target"]["hostname"] == "127.0.0.1"


def test_the_allowed_desktop_still_opens_and_shows_its_desktop(guarded, vnc_target, tunnel):
    reply = guarded.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            return await t.until("sync")
    seen = asyncio.run(scenario())
    assert "error" not in seen and {"size", "img", "sync"} <= seen.keys()
    # the same desktop on another port of loopback is not what was allowed
    assert "is a loopback address" in refusal(guarded, {**vnc_target,
                                                        "port": vnc_target["port"] + 1})


def test_a_keys_list_narrows_the_global_one(guarded):
    target = {"agent": "static", "protocol": "ssh", "hostname": "10.0.0.5", "port": 22}
    assert guarded.create(target)["target"]["port"] == "22"          # the tests key: any port
    assert refusal(guarded, target, key=PORTAL_KEY) == \
        "10.0.0.5:22 is outside policy.api_keys.portal.ports"
    r = guarded.api("POST", "/api/v1/consoles", key=PORTAL_KEY,
                    json={"target": {**target, "protocol": "vnc", "port": 5901}})
    assert r.status_code == 201, r.text
    # and it cannot widen it: loopback stays refused for portal on its own ports
    assert "is a loopback address" in refusal(guarded, telnet("127.0.0.1", 5999),
                                              key=PORTAL_KEY)


def test_a_repeaters_far_end_is_held_to_the_policy(guarded):
    target = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5500,
              "dest-host": "169.254.169.254", "dest-port": 80}
    assert refusal(guarded, target).startswith("169.254.169.254:80 is a link-local address")
    lone = {k: v for k, v in target.items() if k != "dest-port"}
    r = guarded.api("POST", "/api/v1/consoles", json={"target": lone})
    assert r.status_code == 400 and "dest-host needs dest-port" in r.json()["details"]


def test_an_unresolvable_name_answers_400(guarded):
    r = guarded.api("POST", "/api/v1/consoles",
                    json={"target": telnet("no-such-host.invalid", 23)})
    assert r.status_code == 400 and "no-such-host.invalid does not resolve" in r.json()["details"]


def test_a_console_is_judged_again_when_its_tunnel_connects(guacd, vnc_desktop, vnc_target,
                                                             tunnel, tmp_path):
    """Made while its target was allowed; the service restarts with a policy that refuses
    it (as a name whose DNS answer moved would be): the tunnel ends, guacd is not asked."""
    allowed = f"{vnc_desktop.host}:{vnc_desktop.port}"
    before = start_service(tmp_path, f"{guacd.host}:{guacd.port}",
                           GUACBRIDGE_POLICY_ALLOW=allowed)
    try:
        reply = before.create(vnc_target)
    finally:
        before.stop()
    after = start_service(tmp_path, f"{guacd.host}:{guacd.port}", port=reply["websocket"]["port"],
                          GUACBRIDGE_POLICY_ALLOW="")

    async def scenario():
        async with tunnel(reply) as t:
            return await t.closing()
    try:
        status, message, _ = asyncio.run(scenario())
        log = after.log_text()
    finally:
        after.stop()
    assert status == CLIENT_FORBIDDEN
    assert message.startswith(f"{allowed} is a loopback address, refused unless policy.allow")
    assert "not connecting" in log


def test_a_job_to_a_refused_target_is_dead_lettered_with_the_rule(broker_env):  # noqa: F811
    _, producer, start_worker, _ = broker_env
    start_worker(broker_toml=f'[policy.producers."{producer.user}"]\n'
                 'ports = ["5900-5999"]\n')
    producer.wait_for_topology()
    metadata = job(target=telnet("169.254.169.254", 80))
    outside = job(target={"agent": "static", "protocol": "ssh", "hostname": "10.0.0.5",
                          "port": 22})
    good = job()
    for each in (metadata, outside, good):
        producer.publish(each)
    replies = dict(producer.replies(3))
    assert replies[good["job_id"]]["result"] is True
    assert replies[metadata["job_id"]]["result"] is False
    deadline = time.monotonic() + 10
    dead = []
    while len(dead) < 2 and time.monotonic() < deadline:
        dead += producer.queue("guacbridge.dead")
        time.sleep(0.1)
    reasons = sorted(h["x-guacbridge-reason"] for h, _ in dead)
    assert reasons == [
        f"10.0.0.5:22 is outside policy.producers.{producer.user}.ports",
        "169.254.169.254:80 is a link-local address, refused unless policy.allow lists it"]

