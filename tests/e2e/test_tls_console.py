"""A person opens an https console URL in Chromium that trusts the test CA (added to the NSS
database of the browser's own HOME, the way a company CA is), and the desktop arrives over
wss. No certificate check is switched off."""
import os
import signal
import subprocess
import uuid

import pytest

from guacbridge.demo import free_port
from guacbridge.keyring import new_key
from guacbridge.store.mysql import MysqlGrantStore
from nginx_fixtures import start_nginx
from parts import CHROMIUM_ARGS, require, unavailable
from screens import COUNT_LIT_PIXELS
from service_fixtures import start_service

pytestmark = pytest.mark.e2e


def home_trusting(folder, ca_cert=None):
    """A HOME with its own NSS database (~/.pki/nssdb, where Chromium on Linux looks),
    trusting *ca_cert* for servers if given."""
    require("certutil", "libnss3-tools")
    nssdb = folder / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    if ca_cert is not None:
        subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "guacbridge test CA",
                        "-t", "C,,", "-i", str(ca_cert)], check=True)
    return folder


@pytest.fixture(scope="module")
def chromium_with_home(chromium_path, tmp_path_factory):
    """Launches Debian's chromium with a HOME of the test's choosing (one Playwright per
    module: its sync API keeps a loop running in this thread)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    launched = []

    def launch(home):
        b = pw.chromium.launch(executable_path=chromium_path, headless=True,
                               args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)})
        launched.append(b)
        return b
    yield launch
    for b in launched:
        b.close()
    pw.stop()


@pytest.fixture(scope="module")
def trusting_browser(chromium_with_home, test_ca, tmp_path_factory):
    return chromium_with_home(home_trusting(tmp_path_factory.mktemp("home-ca"), test_ca.ca_cert))


def test_an_https_console_url_shows_the_desktop_over_wss(tls_service, vnc_target,
                                                        trusting_browser, artifacts):
    reply = tls_service.create(vnc_target, user="alice")
    assert reply["url"].startswith("https://")
    context = trusting_browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(reply["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
    page.wait_for_function(f"() => ({COUNT_LIT_PIXELS})() > 100", timeout=5000)  # drawn
    port = reply["websocket"]["port"]
    assert sockets and all(url.startswith(f"wss://127.0.0.1:{port}/tunnel?") for url in sockets)
    page.screenshot(path=str(artifacts / "tls-console.png"))
    context.close()


def test_a_browser_without_the_ca_refuses_the_console(tls_service, vnc_target,
                                                     chromium_with_home, tmp_path):
    reply = tls_service.create(vnc_target)
    page = chromium_with_home(home_trusting(tmp_path)).new_context().new_page()
    with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
        page.goto(reply["url"])
    page.context.close()


def test_behind_the_nginx_example_a_console_survives_a_restart_of_its_instance(
        guacd, vnc_target, test_ca, mariadb, trusting_browser, tmp_path):
    """Two instances sharing MariaDB behind deploy/nginx-guacbridge.conf; the one serving the
    console gets SIGTERM, and the page comes back through nginx on the other."""
    url = mariadb.create_database(f"gb_{uuid.uuid4().hex[:8]}")
    MysqlGrantStore(url).create_tables()
    ports = [free_port(), free_port()]
    nginx = start_nginx(tmp_path / "nginx", ports, test_ca.cert, test_ca.key)
    env = {"GUACBRIDGE_MYSQL_URL": url, "GUACBRIDGE_SECRET_KEYS": new_key("shared"),
           "GUACBRIDGE_PUBLIC_URL": nginx.base_url,
           "GUACBRIDGE_TRUSTED_PROXIES": "127.0.0.1", "GUACBRIDGE_DRAIN_SECONDS": "30"}
    instances = [start_service(tmp_path / name, f"{guacd.host}:{guacd.port}", port=port, **env)
                 for name, port in zip("ab", ports)]
    context = trusting_browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        reply = instances[0].create(vnc_target)
        assert reply["url"].startswith(nginx.base_url)
        page = context.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(reply["url"])
        page.locator("body[data-state='3']").wait_for(state="attached", timeout=15000)
        up = f"console {reply['id']}: tunnel up"
        serving = next(i for i in instances if up in i.log_text())
        other = next(i for i in instances if i is not serving)
        os.kill(serving.process.pid, signal.SIGTERM)
        assert serving.process.wait(30) == 0
        page.wait_for_function("() => window.guacbridge.reconnects === 1"
                               " && window.guacbridge.state === 3", timeout=15000)
        assert up in other.log_text()
        assert all(u.startswith(f"wss://127.0.0.1:{nginx.port}/tunnel?") and "token=" not in u
                   for u in sockets) and len(sockets) == 2
        page.wait_for_function(f"() => ({COUNT_LIT_PIXELS})() > 100", timeout=5000)
    finally:
        context.close()
        for instance in instances:
            instance.stop()
        nginx.stop()
