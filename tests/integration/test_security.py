"""API keys with scopes, consoles visible to their owner, the tunnel's Origin check, security
headers and logs without secrets, on a real service (hashed keys from its TOML file)."""
import asyncio
import os
import re
import secrets
import subprocess
import sys

import pytest
import requests
import tornado.httpclient
import tornado.websocket

import leaks
from guacbridge import apikeys, protocol
from service_fixtures import start_service

pytestmark = pytest.mark.integration

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "127.0.0.1", "port": 5999,
          "password": "pw-of-a-test-target"}
PORTAL = "https://portal.example"
SCOPES = {"reader": ["read"], "creator": ["create", "read"],
          "portal": ["create", "read", "extend", "revoke"]}


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    found = {name: secrets.token_urlsafe(32) for name in SCOPES}
    leaks.remember(*found.values())
    return found


@pytest.fixture(scope="module")
def keyed(guacd, tmp_path_factory, keys):
    """A service whose keys are hashes with scopes in its TOML file (plus the fixture's
    admin key from GUACBRIDGE_API_KEYS), and one more origin allowed on the tunnel."""
    workdir = tmp_path_factory.mktemp("keyed-service")
    blocks = [apikeys.toml_block(apikeys.ApiKey(name, apikeys.digest(keys[name]),
                                                frozenset(SCOPES[name]))) for name in SCOPES]
    config = workdir / "guacbridge.toml"
    config.write_text(f'[guacbridge]\nallowed_origins = ["{PORTAL}"]\n\n' + "\n".join(blocks))
    assert all(keys[name] not in config.read_text() for name in keys)
    s = start_service(workdir, f"{guacd.host}:{guacd.port}", GUACBRIDGE_CONFIG=str(config))
    yield s
    s.stop()


def test_a_key_without_the_scope_gets_403_naming_the_scope(keyed, keys):
    r = keyed.api("POST", "/api/v1/consoles", key=keys["reader"], json={"target": TARGET})
    assert r.status_code == 403
    assert r.json()["result"] is False
    assert "lacks the scope 'create'" in r.json()["details"]
    assert 'error="insufficient_scope", scope="create"' in r.headers["WWW-Authenticate"]

    created = keyed.api("POST", "/api/v1/consoles", key=keys["creator"], json={"target": TARGET})
    assert created.status_code == 201
    console = created.json()["id"]
    r = keyed.api("DELETE", f"/api/v1/consoles/{console}", key=keys["creator"])
    assert r.status_code == 403 and "'revoke'" in r.json()["details"]
    r = keyed.api("POST", f"/api/v1/consoles/{console}/extend", key=keys["creator"],
                  json={"seconds": 60})
    assert r.status_code == 403 and "'extend'" in r.json()["details"]
    assert keyed.api("GET", f"/api/v1/consoles/{console}", key=keys["creator"]).json()[
        "state"] == "pending"


@pytest.mark.parametrize("header", [None, "Bearer not-a-key-of-ours", "Basic dXNlcjpwdw=="])
def test_no_key_or_an_unknown_one_gets_401(keyed, header):
    headers = {"Authorization": header} if header else {}
    r = requests.post(keyed.base_url + "/api/v1/consoles", json={"target": TARGET},
                      headers=headers, timeout=5)
    assert r.status_code == 401 and r.json()["result"] is False
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="guacbridge"')


def test_a_key_sees_and_closes_only_its_own_consoles_unless_admin(keyed, keys):
    theirs = keyed.api("POST", "/api/v1/consoles", key=keys["creator"],
                       json={"target": TARGET}).json()["id"]
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/extend")):
        r = keyed.api(method, f"/api/v1/consoles/{theirs}{path}", key=keys["portal"],
                      json={"seconds": 60} if method == "POST" else None)
        assert r.status_code == 404 and "no console" in r.json()["details"], (method, path)
    own = keyed.api("POST", "/api/v1/consoles", key=keys["portal"], json={"target": TARGET})
    assert own.json()["owner"] == "portal"
    assert keyed.api("DELETE", f"/api/v1/consoles/{own.json()['id']}",
                     key=keys["portal"]).json()["state"] == "closed"
    admin = keyed.api("DELETE", f"/api/v1/consoles/{theirs}")     # GUACBRIDGE_API_KEYS key
    assert admin.status_code == 200 and admin.json()["state"] == "closed"


def test_every_response_carries_the_security_headers(keyed):
    console = keyed.create(TARGET)["id"]
    for path in ("/healthz", "/api/v1/nothing", f"/console/{console}", "/static/console.js",
                 "/tunnel"):
        r = requests.get(keyed.base_url + path, timeout=5)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "no-referrer", path
        assert r.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
        assert "Strict-Transport-Security" not in r.headers, path      # plain http here
    page = requests.get(f"{keyed.base_url}/console/{console}", timeout=5)
    policy = dict(p.strip().split(" ", 1) for p in page.headers["Content-Security-Policy"]
                  .split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == f"'self' ws://{keyed.base_url.split('//')[1]}"


async def _connect(service, reply, origin):
    ws = reply["websocket"]
    url = f"ws://{ws['host']}:{ws['port']}{ws['path']}?token={ws['token']}"
    headers = {"Origin": origin} if origin else {}
    conn = await tornado.websocket.websocket_connect(
        tornado.httpclient.HTTPRequest(url, headers=headers), subprotocols=["guacamole"])
    try:
        seen = []
        while "sync" not in seen:
            message = await asyncio.wait_for(conn.read_message(), 10)
            assert message is not None, f"closed: {conn.close_code} {conn.close_reason}"
            seen += [protocol.parse(raw)[0] for raw in protocol.split(message)]
            assert "error" not in seen
        return seen
    finally:
        conn.close()


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:1", "null"])
def test_a_page_from_a_foreign_origin_cannot_open_the_tunnel(keyed, vnc_target, origin):
    reply = keyed.create(vnc_target)
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        asyncio.run(_connect(keyed, reply, origin))
    assert refused.value.code == 403
    answer = requests.get(f"{keyed.base_url}/tunnel?token=x", timeout=5, headers={
        "Origin": origin, "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert answer.status_code == 403 and "allowed_origins" in answer.json()["details"]
    # The refusal spent nothing: the console's own page can still use the link.
    assert "sync" in asyncio.run(_connect(keyed, reply, keyed.base_url))
    assert "not allowed" in keyed.log_text()


@pytest.mark.parametrize("origin", ["own", PORTAL, None])
def test_the_own_origin_a_configured_one_and_none_may_open_the_tunnel(keyed, vnc_target,
                                                                        origin):
    reply = keyed.create(vnc_target)
    origin = keyed.base_url if origin == "own" else origin
    assert "sync" in asyncio.run(_connect(keyed, reply, origin))


def test_tokens_in_query_strings_and_legacy_paths_never_reach_the_log(keyed):
    probe = secrets.token_urlsafe(16)
    leaks.remember(probe)
    for path in (f"/tunnel?token={probe}", f"/api/v1/nothing?token={probe}&extra={probe}",
                 f"/h/skey/{probe}/id/n/ovirt/pass/{probe}/port/5900/location/x",
                 f"/console/{'0' * 8}-0000-0000-0000-{'0' * 12}?session={probe}"):
        requests.get(keyed.base_url + path, timeout=5)
    requests.get(keyed.base_url + "/healthz", headers={"Authorization": f"Bearer {probe}"},
                 timeout=5)
    log = keyed.log_text()
    assert "/api/v1/nothing" in log and "/skey/***" in log      # the requests were logged
    assert probe not in log


def test_a_key_made_by_the_cli_works_with_exactly_its_scopes(guacd, tmp_path):
    made = subprocess.run([sys.executable, "-m", "guacbridge.cli", "keys", "new", "ops",
                           "--scopes", "read,revoke"], capture_output=True, text=True,
                          check=True, env={**os.environ, "GUACBRIDGE_CONFIG": ""})
    secret = re.search(r"^    (\S{40,})$", made.stderr, re.M)[1]
    leaks.remember(secret)
    assert secret not in made.stdout and made.stdout.startswith("[api_keys.ops]\n")
    (tmp_path / "guacbridge.toml").write_text(made.stdout)
    s = start_service(tmp_path, f"{guacd.host}:{guacd.port}",
                      GUACBRIDGE_CONFIG=str(tmp_path / "guacbridge.toml"))
    try:
        unknown = "/api/v1/consoles/00000000-0000-0000-0000-000000000000"
        assert s.api("GET", unknown, key=secret).status_code == 404       # read: allowed
        assert s.api("DELETE", unknown, key=secret).status_code == 404    # revoke: allowed
        r = s.api("POST", "/api/v1/consoles", key=secret, json={"target": TARGET})
        assert r.status_code == 403 and "'create'" in r.json()["details"]
    finally:
        s.stop()
