"""guacbridge behind real nginx running deploy/nginx-guacbridge.conf: the API, the page and
the WebSocket tunnel all work through it over TLS, and guacbridge believes X-Forwarded-*
only from the proxies it was told to trust."""
import asyncio
import re
import secrets
import ssl
import time

import pytest
import requests
import tornado.httpclient

import leaks
from guacbridge import protocol
from guacbridge.demo import free_port
from guacbridge.sessions import SECRET_OPCODE
from nginx_fixtures import start_nginx
from service_fixtures import start_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxied(guacd, test_ca, tmp_path_factory):
    """(nginx, guacbridge) with guacbridge on loopback and its public URL nginx's."""
    workdir = tmp_path_factory.mktemp("proxied")
    port = free_port()
    nginx = start_nginx(workdir / "nginx", [port], test_ca.cert, test_ca.key)
    service = start_service(workdir / "guacbridge", f"{guacd.host}:{guacd.port}", port=port,
                            GUACBRIDGE_PUBLIC_URL=nginx.base_url,
                            GUACBRIDGE_TRUSTED_PROXIES="127.0.0.1")
    direct = service.base_url
    service.base_url, service.verify = nginx.base_url, str(test_ca.ca_cert)   # via nginx
    yield nginx, service, direct
    service.stop()
    nginx.stop()


def test_a_console_opens_through_the_proxy_over_wss(proxied, vnc_target, tunnel, test_ca):
    nginx, service, _ = proxied
    reply = service.create(vnc_target)
    assert reply["url"].startswith(f"{nginx.base_url}/console/")
    assert (reply["websocket"]["port"], reply["websocket"]["secure"]) == (nginx.port, True)
    page = requests.get(reply["url"].split("#")[0], verify=service.verify, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    trust = ssl.create_default_context(cafile=str(test_ca.ca_cert))

    async def scenario():
        async with tunnel(reply, ssl_options=trust) as t:
            seen = await t.until("sync")                    # guacd → browser
            ping = protocol.encode("", "ping", int(time.time() * 1000))
            t.send(ping)                                    # browser → guacbridge → back
            return seen, ping, await t.wait_for_raw(ping)
    seen, ping, echoed = asyncio.run(scenario())
    assert "error" not in seen and {"size", "img"} <= seen.keys()
    assert echoed == ping
    deadline = time.monotonic() + 5        # nginx logs a WebSocket once it has closed
    while not re.search(r'"GET /tunnel HTTP/1.1" 101 ',
                        logged := (nginx.workdir / "access.log").read_text()):
        assert time.monotonic() < deadline, f"no upgraded /tunnel in nginx's log:\n{logged}"
        time.sleep(0.1)
    assert reply["websocket"]["token"] not in logged and "token=" not in logged


def seen_from(service) -> str:
    """The client address in the service's last access-log line for /healthz."""
    lines = re.findall(r"\b200 GET /healthz (\S+) ", service.log_text())
    return lines[-1]


def test_forwarded_addresses_count_only_from_trusted_proxies(proxied, service):
    nginx, behind, direct = proxied
    spoof = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}

    def ask(url, **kw):
        requests.get(f"{url}/healthz", headers=spoof, timeout=5, **kw)
        time.sleep(0.2)                               # let the access-log line land
    ask(nginx.base_url, verify=behind.verify)         # nginx puts what it saw in X-Real-IP
    assert seen_from(behind) == "127.0.0.1"
    ask(direct)                                       # from 127.0.0.1, which it trusts
    assert seen_from(behind) == "203.0.113.9"
    ask(service.base_url)                             # a service that trusts no proxy
    assert seen_from(service) == "127.0.0.1"


# -- nothing nginx logs holds a secret ---------------------------------------------------

def test_nginx_logs_no_legacy_key_password_token_or_reconnect_secret(guacd, vnc_target, tunnel,
                                                                     test_ca, tmp_path):
    """The legacy route (key and password in the path) and the tunnel (token or reconnect
    secret in the query string) through the example's nginx, answered and then with
    guacbridge stopped, so that nginx logs upstream failures: no secret in any of its logs."""
    key, password = secrets.token_urlsafe(18), secrets.token_urlsafe(12)
    leaks.remember(key, password)
    port = free_port()
    nginx = start_nginx(tmp_path / "nginx", [port], test_ca.cert, test_ca.key)
    conf = tmp_path / "guacbridge.toml"
    conf.write_text(f'[legacy.keys]\nams1 = "{key}"\n')
    service = start_service(tmp_path / "guacbridge", f"{guacd.host}:{guacd.port}", port=port,
                            GUACBRIDGE_CONFIG=str(conf), GUACBRIDGE_PUBLIC_URL=nginx.base_url,
                            GUACBRIDGE_TRUSTED_PROXIES="127.0.0.1")
    service.base_url, service.verify = nginx.base_url, str(test_ca.ca_cert)
    trust = ssl.create_default_context(cafile=str(test_ca.ca_cert))
    legacy = (f"/192.0.2.10/skey/{key}/id/web-12/ovirt/pass/{password}/port/5900"
              "/location/ams1")
    spent: list[str] = []

    async def open_tunnel(reply, **query):
        async with tunnel(reply, ssl_options=trust, **query) as t:
            seen = await t.until("sync")
            spent.extend(args[0] for args in seen.get(SECRET_OPCODE, []))
            return seen
    try:
        answered = requests.get(nginx.base_url + legacy, verify=service.verify, timeout=10)
        assert answered.status_code != 502 and "Result" in answered.json()
        used = service.create(vnc_target)                              # a raw-token tunnel
        assert "error" not in asyncio.run(open_tunnel(used))
        paged = service.create(vnc_target)                             # the page's tunnel
        secret = service.api("POST", f"/console/{paged['id']}/session", key=None,
                             json={"token": paged["websocket"]["token"]}).json()["session"]
        assert "error" not in asyncio.run(open_tunnel(paged, console=paged["id"],
                                                      session=secret))
        unused = service.create(vnc_target)         # its token is still good when logged
    finally:
        service.stop()
    leaks.remember(*spent)
    try:
        assert requests.get(nginx.base_url + legacy, verify=service.verify,
                            timeout=10).status_code == 502
        for reply, query in [(unused, {}), (paged, {"console": paged["id"], "session": secret}),
                             (paged, {"console": paged["id"], "session": spent[-1]})]:
            with pytest.raises(tornado.httpclient.HTTPClientError) as e:
                asyncio.run(open_tunnel(reply, **query))
            assert e.value.code == 502
        assert requests.get(nginx.base_url + "/healthz", verify=service.verify,
                            timeout=10).status_code == 502
        time.sleep(0.5)                            # let nginx write its lines
    finally:
        nginx.stop()
    logs = nginx.logs()
    access, errors = logs["access.log"], logs["guacbridge.error.log"]
    # The requests were logged, and the upstream failure too (on a path without secrets):
    assert '"GET /(legacy route, redacted) HTTP/1.1" 502 ' in access
    assert '"GET /tunnel HTTP/1.1" 101 ' in access and '"GET /tunnel HTTP/1.1" 502 ' in access
    assert "/healthz" in errors and "connect() failed" in errors
    shown = [key, password, unused["websocket"]["token"], used["websocket"]["token"],
             paged["websocket"]["token"], secret, *spent]
    found = [(name, value[:4]) for name, text in logs.items() for value in shown
             if value in text]
    assert not found, f"secrets in nginx's logs: {found}"
    assert not any(marker in text for text in logs.values()
                   for marker in ("token=", "session=", "/skey/", "/pass/"))
