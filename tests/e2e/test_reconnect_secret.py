"""The console page's reconnect secret is rotated at every resume, in Chromium on the real
stack: the page takes the new one from its tunnel, keeps working across a network drop with
it, and a tab that still holds an old one is refused in words, without retrying."""
import time
import urllib.parse

import pytest
import requests

import leaks

pytestmark = pytest.mark.e2e


def target(desktop):
    return {"agent": "static", "protocol": "vnc", "hostname": desktop.host,
            "port": desktop.port, "password": desktop.password}


def wait_connected(page, timeout_ms=20000):
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=timeout_ms)
    page.locator("#status").wait_for(state="hidden", timeout=timeout_ms)


def sent_secrets(proxy):
    """The reconnect secret in each tunnel URL the page opened, in order."""
    out = []
    for line in proxy.requests:
        if line.startswith("GET /tunnel"):
            query = urllib.parse.urlsplit(line.split(" ")[1]).query
            out.append(urllib.parse.parse_qs(query)["session"][0])
    return out


def stored_secret(page, console_id):
    return page.evaluate(f"sessionStorage.getItem('guacbridge-session:{console_id}')")


def until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def page_status(service, console_id, secret):
    return requests.get(f"{service.base_url}/console/{console_id}/session", timeout=5,
                        headers={"X-Console-Session": secret}).status_code


def test_the_page_rotates_its_secret_and_a_tab_with_an_old_one_is_refused(
        service, vnc_desktop, page, proxy, browser):
    reply = service.create(target(vnc_desktop))
    page.goto(proxy.url(reply["url"]))
    wait_connected(page)
    [s1] = sent_secrets(proxy)
    s2 = until(lambda: (s := stored_secret(page, reply["id"])) != s1 and s)
    leaks.remember(s1, s2)
    # The page used s2 at once: s1, as a log would have it, is dead.
    until(lambda: page_status(service, reply["id"], s1) == 403)
    assert page_status(service, reply["id"], s2) == 200

    proxy.cut()                                              # a network drop
    page.locator("body[data-reconnecting]").wait_for(state="attached", timeout=20000)
    wait_connected(page)
    assert page.evaluate("window.guacbridge.reconnects") == 1
    assert sent_secrets(proxy) == [s1, s2]                   # it came back with the new one
    s3 = until(lambda: (s := stored_secret(page, reply["id"])) not in (s1, s2) and s)
    leaks.remember(s3)

    stale = browser.new_context().new_page()   # a tab left with the first secret
    stale.goto(reply["url"].split("#")[0])
    stale.evaluate(f"sessionStorage.setItem('guacbridge-session:{reply['id']}', {s1!r})")
    stale.reload()
    stale.locator("body[data-error='769']").wait_for(state="attached")
    assert "resumed elsewhere with a newer secret" in stale.locator("#status").inner_text()
    stale.wait_for_timeout(2000)
    assert stale.locator("body[data-reconnecting]").count() == 0       # no retry loop
    assert stale.evaluate("window.guacbridge.reconnects") == 0
    stale.context.close()
    assert page.evaluate("window.guacbridge.state") == 3              # the page goes on
    assert service.get(reply["id"])["state"] == "active"
