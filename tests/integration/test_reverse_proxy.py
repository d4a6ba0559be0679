"""guacbridge behind real nginx running deploy/nginx-guacbridge.conf: the API, the page and
the WebSocket tunnel all work through it over TLS, and guacbridge believes X-Forwarded-*
only from the proxies it was told to trust."""
import asyncio
import re
import ssl
import time

import pytest
import requests

from guacbridge import protocol
from guacbridge.demo import free_port
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
