"""guacbridge serving HTTPS and WSS itself, with a certificate from a test CA: the reply
points at https/wss on the TLS port, and a console works through the encrypted tunnel."""
import asyncio
import os
import socket
import ssl
import subprocess
import sys

import pytest
import requests

from guacbridge.demo import free_port

pytestmark = pytest.mark.integration


def test_the_reply_points_at_https_and_a_secure_websocket(tls_service, vnc_target):
    reply = tls_service.create(vnc_target)
    port = int(tls_service.base_url.rsplit(":", 1)[1])
    assert reply["url"].startswith(f"https://127.0.0.1:{port}/console/{reply['id']}#token=")
    ws = reply["websocket"]
    assert (ws["host"], ws["port"], ws["path"], ws["secure"]) == ("127.0.0.1", port,
                                                                 "/tunnel", True)
    page = requests.get(reply["url"].split("#")[0], verify=tls_service.verify, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_a_console_works_through_wss(tls_service, vnc_target, tunnel, test_ca):
    reply = tls_service.create(vnc_target)
    trust = ssl.create_default_context(cafile=str(test_ca.ca_cert))

    async def scenario():
        async with tunnel(reply, ssl_options=trust) as t:
            return await t.until("sync")
    seen = asyncio.run(scenario())
    assert "error" not in seen and {"size", "img"} <= seen.keys()


def test_plain_http_on_the_tls_port_gets_no_console(tls_service):
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_service.base_url.replace("https:", "http:") + "/healthz", timeout=5)


def test_a_client_offering_only_tls_1_1_is_refused(tls_service, test_ca):
    old = ssl.create_default_context(cafile=str(test_ca.ca_cert))
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")          # let this client try; the server must say no
    port = int(tls_service.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            with old.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass


def test_an_unreadable_key_stops_the_start_with_a_clear_message(tmp_path, test_ca):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUACBRIDGE_")}
    env.update(GUACBRIDGE_TLS_CERT=str(test_ca.cert),
               GUACBRIDGE_TLS_KEY=str(tmp_path / "missing.key"),
               GUACBRIDGE_LISTEN=f"127.0.0.1:{free_port()}",
               GUACBRIDGE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "guacbridge.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"cannot read the TLS key {tmp_path / 'missing.key'}" in done.stderr
    assert "Traceback" not in done.stderr
