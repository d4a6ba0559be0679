"""Someone types into a recorded console in Chromium; later the player page plays the
recording back, and its last frame is the screen the person saw (the typed text included);
with several parts, its list shows each part's first screen and plays the one chosen."""
import time

import pytest

from screens import COMPARE
from service_fixtures import start_service
from test_menu import point_at, target, toggle_menu, wait_connected

pytestmark = pytest.mark.e2e

FLUSH = "() => new Promise((done) => window.guacbridge.display.flush(done))"
FLATTEN = "(name) => window[name].display.flatten().toDataURL('image/png')"


# Seek, then wait until the display has drawn what the seek replayed (images decode later).
SEEK = """(where) => new Promise((done) => {
  const player = window.guacbridgePlayer;
  const rec = player.recording;
  rec.seek(where === 'end' ? rec.getDuration() : 0, () => player.display.flush(done));
})"""


@pytest.fixture(scope="module")
def recorded(guacd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("recorded-e2e")
    s = start_service(workdir, f"{guacd.host}:{guacd.port}",
                      GUACBRIDGE_RECORDINGS_DIR=str(workdir / "recordings"))
    s.recordings = workdir / "recordings"
    yield s
    s.stop()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


def wait_settled(path, timeout: float = 10.0) -> None:
    """Until guacd has closed the recording (its size stops changing)."""
    deadline, size = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else -1
        if now == size and now > 0:
            return
        size = now
        time.sleep(0.5)


def test_the_player_plays_back_what_was_typed_in_the_recorded_console(recorded, vnc_desktop,
                                                                      context, artifacts):
    reply = recorded.create(target(vnc_desktop), recording=True)
    page = context.new_page()
    page.goto(reply["url"])
    wait_connected(page)
    point_at(page, 200, 150)                                    # the xterm
    page.wait_for_timeout(500)
    page.evaluate(FLUSH)
    before = page.evaluate(FLATTEN, "guacbridge")
    page.keyboard.type("echo this-session-is-recorded", delay=20)
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)                                 # the echo drawn
    page.evaluate(FLUSH)
    live = page.evaluate(FLATTEN, "guacbridge")
    typed = page.evaluate(COMPARE, [before, live])
    assert typed["differing"] > 100, typed                     # the typed text, on screen
    page.screenshot(path=str(artifacts / "recorded-live-session.png"))
    recorded.delete(reply["id"])
    wait_settled(recorded.recordings / reply["id"])

    info = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording").json()
    assert info["result"] is True and info["duration"] > 1
    player = context.new_page()
    player.goto(info["player_url"])
    player.locator("body[data-state='paused']").wait_for(state="attached", timeout=15000)
    assert "#token" not in player.url
    player.evaluate(SEEK, "end")
    last = player.evaluate(FLATTEN, "guacbridgePlayer")
    player.screenshot(path=str(artifacts / "recording-player.png"))
    same = player.evaluate(COMPARE, [live, last])
    assert same["differing"] >= 0, same                        # same size: 1024x768
    assert same["differing"] <= 16, same                       # the screen the person saw

    # Play from the start to the end with the button; the slider seeks back.
    player.evaluate("() => new Promise((done) => window.guacbridgePlayer.recording.seek(0, done))")
    player.get_by_role("button", name="Play").click()
    player.locator("body[data-state='playing']").wait_for(state="attached", timeout=5000)
    player.locator("body[data-state='ended']").wait_for(state="attached", timeout=60000)
    assert player.locator("#play").inner_text() == "Play again"
    player.locator("#seek").fill("0")
    deadline = time.monotonic() + 5
    while not player.locator("#position").inner_text().startswith("0:00 / 0:0") \
            and time.monotonic() < deadline:
        player.wait_for_timeout(100)
    assert player.locator("#position").inner_text().startswith("0:00 / 0:0")
    assert player.evaluate("window.guacbridgePlayer.recording.getPosition()") == 0


def test_a_player_link_works_once(recorded, vnc_desktop, context):
    reply = recorded.create(target(vnc_desktop), recording=True)
    page = context.new_page()
    page.goto(reply["url"])
    wait_connected(page)
    recorded.delete(reply["id"])
    wait_settled(recorded.recordings / reply["id"])
    url = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording").json()["player_url"]
    first = context.new_page()
    first.goto(url)
    first.locator("body[data-state='paused']").wait_for(state="attached", timeout=15000)
    other = context.browser.new_context().new_page()
    other.goto(url)
    other.locator("body[data-state='error']").wait_for(state="attached", timeout=10000)
    assert "already been used" in other.locator("#status").inner_text()
    other.context.close()


# Each thumbnail of the list once shown: its size as decoded, and whether it is drawn.
THUMBNAILS = """() => [...document.querySelectorAll('#parts img')].map((img) => ({
  alt: img.alt, loading: img.loading, complete: img.complete, width: img.width,
  naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
  src: img.src.split(':')[0], state: img.dataset.state || '' }))"""


def test_each_connection_of_a_console_is_a_part_the_player_can_choose(recorded, vnc_desktop,
                                                                     context, artifacts):
    reply = recorded.create(target(vnc_desktop), recording=True)
    page = context.new_page()
    page.goto(reply["url"])
    wait_connected(page)
    toggle_menu(page)
    page.locator("#timezone").select_option("Asia/Tokyo")     # a new guacd connection
    deadline = time.monotonic() + 15
    while page.evaluate("window.guacbridge.reconnects") < 1 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    wait_connected(page)
    page.wait_for_timeout(1000)
    recorded.delete(reply["id"])
    wait_settled(recorded.recordings / f"{reply['id']}.1")

    info = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording").json()
    assert [f["part"] for f in info["files"]] == [0, 1]
    player = context.new_page()
    failed = []
    player.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    player.goto(info["player_url"])
    player.locator("body[data-state='paused']").wait_for(state="attached", timeout=15000)
    assert player.evaluate("window.guacbridgePlayer.part") == 0

    # The list of parts: each with its first screen, drawn by guacbridge, loaded.
    parts = player.get_by_role("navigation", name="Parts of the recording")
    assert parts.is_visible()
    player.locator("#parts img[data-state='loaded']").nth(1).wait_for(timeout=15000)
    shown = player.evaluate(THUMBNAILS)
    assert [t["alt"] for t in shown] == ["First screen of part 1", "First screen of part 2"]
    for thumbnail in shown:
        assert thumbnail["complete"] and thumbnail["naturalWidth"] == 160, shown
        assert thumbnail["naturalHeight"] == 120 and thumbnail["width"] == 160, shown
        assert thumbnail["loading"] == "lazy" and thumbnail["src"] == "blob", shown
    assert not failed, failed                 # nothing refused, by the CSP or otherwise
    player.locator("#parts-list").screenshot(path=str(artifacts / "recording-parts.png"))

    player.get_by_role("button", name="Part 2").click()
    player.wait_for_timeout(200)
    player.locator("body[data-state='paused']").wait_for(state="attached", timeout=15000)
    assert player.evaluate("window.guacbridgePlayer.part") == 1
    assert player.evaluate("window.guacbridgePlayer.recording.getDuration()") > 500
    assert player.get_by_role("button", name="Part 2").get_attribute("aria-current") == "true"


# Every value the page's state takes, from its first script on (the desktop shows at 3).
STATES = """window.__states = [];
setInterval(() => { const s = document.body && document.body.dataset.state;
  if (s !== undefined && window.__states.at(-1) !== s) window.__states.push(s); }, 5);"""


def test_a_console_that_must_be_recorded_but_cannot_be_never_shows_its_desktop(
        guacd, tmp_path_factory, vnc_desktop, context):
    """policy always, and guacd's recordings folder lies under a plain file: guacd cannot
    create the recording, and the page never shows the desktop, then says why."""
    workdir = tmp_path_factory.mktemp("unrecordable-e2e")
    (workdir / "a-file").write_text("")
    (workdir / "guacbridge.toml").write_text(
        f'[recordings]\ndir = "{workdir / "recordings"}"\npolicy = "always"\n'
        f'guacd_dir = "{workdir / "a-file" / "recordings"}"\nverify_timeout = 0.2\n')
    s = start_service(workdir, f"{guacd.host}:{guacd.port}",
                      GUACBRIDGE_CONFIG=str(workdir / "guacbridge.toml"))
    try:
        page = context.new_page()
        page.add_init_script(STATES)
        page.goto(s.create(target(vnc_desktop))["url"])
        # The page retries 0x0200 (5 attempts, 5 s apart), each one closed the same way.
        page.locator("body[data-error='512']").wait_for(state="attached", timeout=60000)
        page.locator("body[data-reconnecting]").wait_for(state="detached", timeout=5000)
        status = page.locator("#status").inner_text()
        assert "This console must be recorded and its recording could not be created" in status
        assert "Gave up after 5 attempts" in status
        states = page.evaluate("window.__states")
        assert "2" in states and "3" not in states, states   # waiting, never CONNECTED (3)
    finally:
        s.stop()
