"""The console page under its strict Content-Security-Policy in Chromium: it connects, draws,
takes input and shows its menu and on-screen keyboard without one blocked script, style or
connection; and a console left idle warns on the page before it ends."""
import pytest

from service_fixtures import start_service

pytestmark = pytest.mark.e2e

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    page.csp_messages = []
    page.on("console", lambda m: "Content Security Policy" in m.text
            and page.csp_messages.append(m.text))
    yield page
    context.close()


def wait_state(page, state: int, timeout_ms: int = 15000) -> None:
    page.locator(f"body[data-state='{state}']").wait_for(state="attached", timeout=timeout_ms)


def test_the_console_page_works_under_its_policy_with_nothing_blocked(service, vnc_target,
                                                                      page):
    reply = service.create(vnc_target)
    response = page.goto(reply["url"])
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_state(page, 3)
    page.mouse.click(300, 300)
    page.keyboard.type("echo csp", delay=10)
    page.keyboard.press("Enter")          # leave the shared desktop's shell line empty
    page.keyboard.press("Control+Alt+Shift")
    page.locator("#menu").wait_for(state="visible")
    page.locator("input[name=input][value=osk]").check()
    page.locator("#osk .guac-keyboard").wait_for(state="visible")
    page.locator("input[name=input][value=text]").check()
    page.locator("#text-field").wait_for(state="visible")
    assert page.evaluate("window.__violations") == []
    assert page.csp_messages == []
    assert page.evaluate("window.guacbridge.state") == 3       # still connected


@pytest.fixture(scope="module")
def idle_service(guacd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("idle-service")
    config = workdir / "guacbridge.toml"
    config.write_text("[consoles]\nidle_timeout = 6\nidle_warning = 4\n")
    s = start_service(workdir, f"{guacd.host}:{guacd.port}", GUACBRIDGE_CONFIG=str(config))
    yield s
    s.stop()


def test_an_idle_console_warns_on_the_page_then_says_it_ended_for_inactivity(idle_service,
                                                                             vnc_target, page):
    reply = idle_service.create(vnc_target)
    page.goto(reply["url"])
    wait_state(page, 3)
    page.locator("body[data-idle]").wait_for(state="attached", timeout=10000)
    assert "closes in" in page.locator("#banner-text").inner_text()
    page.mouse.move(200, 200)                    # input: the warning goes
    page.locator("body:not([data-idle])").wait_for(state="attached", timeout=2000)
    page.locator("body[data-idle]").wait_for(state="attached", timeout=10000)
    page.locator("body[data-error]").wait_for(state="attached", timeout=10000)
    assert page.evaluate("window.guacbridge.error.code") == 0x020A
    assert "inactive" in page.locator("#status").inner_text()
    assert page.locator("#banner").is_hidden()
    assert page.evaluate("window.__violations") == []


@pytest.fixture(scope="module")
def stingy_service(guacd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stingy-service")
    config = workdir / "guacbridge.toml"
    config.write_text('[limits]\nconnect_per_address = "1/hour"\n')
    s = start_service(workdir, f"{guacd.host}:{guacd.port}", GUACBRIDGE_CONFIG=str(config))
    yield s
    s.stop()


def test_too_many_connects_from_one_address_are_explained_on_the_page(stingy_service,
                                                                     vnc_target, page):
    reply = stingy_service.create(vnc_target)
    page.goto(reply["url"])         # the token trade takes the one connect of the hour
    page.locator("body[data-error]").wait_for(state="attached", timeout=10000)
    assert page.evaluate("window.guacbridge.error.code") == 0x031D
    text = page.locator("#status").inner_text()
    assert "Too many consoles or connection attempts" in text
    assert "too many tunnel connects from 127.0.0.1" in text
