"""Session recording against the real guacd and Xvnc: guacd writes the recording where
guacbridge set it, the API describes it and hands it out (each part's first screen as a
thumbnail too, to those who may read the recording), keystrokes are kept only when asked
for, old recordings go after the retention, and a guacd that writes elsewhere is reported in
words that say what to fix."""
import asyncio
import io
import os
import secrets
import subprocess
import time
import urllib.parse

import pytest
import requests
from PIL import Image, ImageChops, ImageStat

import leaks
from guacbridge import apikeys, protocol
from screens import xwd_image
from service_fixtures import start_service

pytestmark = pytest.mark.integration


def recorded_service(tmp_path_factory, guacd, name: str, env=None, **recordings):
    """guacbridge with a [recordings] table of *recordings*; *env*: more of its environment."""
    workdir = tmp_path_factory.mktemp(name)
    folder = workdir / "recordings"
    settings = {"dir": str(folder), **recordings}
    lines = ["[recordings]"] + [f'{k} = {v!r}' if isinstance(v, str) else f"{k} = {v}"
                                for k, v in settings.items()]
    (workdir / "guacbridge.toml").write_text("\n".join(lines).replace("'", '"') + "\n")
    service = start_service(workdir, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_CONFIG=str(workdir / "guacbridge.toml"), **(env or {}))
    service.recordings = folder
    return service


@pytest.fixture(scope="module")
def recorded(guacd, tmp_path_factory):
    s = recorded_service(tmp_path_factory, guacd, "recorded", retention=3600)
    yield s
    s.stop()


def settled(path, quiet: float = 0.5, timeout: float = 10) -> None:
    """Wait until guacd has stopped writing *path* (its connection ends after our tunnel)."""
    deadline = time.monotonic() + timeout
    size = -1
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else -1
        if now == size and now > 0:
            return
        size = now
        time.sleep(quiet)


async def type_into(tunnel, reply: dict, text: str) -> None:
    """A short session: the first frame, the command *text* typed and entered (the xterm is
    shared with other tests: nothing may stay on its command line), a few seconds of frames."""
    async with tunnel(reply) as t:
        await t.until("sync")
        for keysym in [ord(char) for char in text] + [0xFF0D]:
            t.send(protocol.encode("key", keysym, 1) + protocol.encode("key", keysym, 0))
        await t.drain(2.5)


def test_a_recorded_console_lists_its_recording_with_size_and_duration(recorded, vnc_target,
                                                                       tunnel):
    reply = recorded.create(vnc_target, recording=True)
    assert reply["recording"] is True
    assert "recording-path" not in reply["target"]      # guacbridge's business, not shown
    early = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording")
    assert early.status_code == 404 and "has not been used yet" in early.json()["details"]

    asyncio.run(type_into(tunnel, reply, "echo hi"))
    recorded.delete(reply["id"])
    r = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["size"] > 1000 and len(body["files"]) == 1
    assert 1.5 < body["duration"] < 60
    assert body["player_url"].startswith(f"{recorded.base_url}/recording/{reply['id']}#token=")

    raw = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording/0")
    assert raw.status_code == 200 and len(raw.content) == body["size"]
    assert b"4.sync," in raw.content and b"4.size," in raw.content
    assert b"3.key," not in raw.content             # keystrokes only when asked for
    assert "recording.requested" in recorded.log_text()


def test_keystrokes_are_recorded_only_when_asked_for(recorded, vnc_target, tunnel):
    reply = recorded.create(vnc_target, recording={"keys": True})
    asyncio.run(type_into(tunnel, reply, ": xyz"))
    raw = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording/0").content
    assert b"3.key,3.120,1.1," in raw            # the key, pressed, and guacd's timestamp


def test_a_console_not_recorded_says_so(recorded, vnc_target):
    reply = recorded.create(vnc_target)
    r = recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording")
    assert r.status_code == 404
    assert r.json() == {"result": False, "details": f"console {reply['id']} was not recorded;"
                        ' ask for "recording": true when opening a console'}


def test_the_recording_needs_an_api_key(recorded, vnc_target):
    reply = recorded.create(vnc_target, recording=True)
    assert recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording",
                        key=None).status_code == 401
    assert recorded.api("GET", f"/api/v1/consoles/{reply['id']}/recording/0",
                        key="wrong").status_code == 401


@pytest.mark.parametrize("asked, words", [
    ("yes", 'recording must be true, false or {"keys": true}'),
    ({"keys": 1}, "recording.keys must be true or false"),
    ({"audio": True}, "unknown recording option(s): audio"),
])
def test_a_malformed_recording_field_is_refused(recorded, vnc_target, asked, words):
    r = recorded.api("POST", "/api/v1/consoles", json={"target": vnc_target,
                                                       "recording": asked})
    assert r.status_code == 400 and words in r.json()["details"]


def test_recording_is_refused_where_no_recordings_directory_is_set(service, vnc_target):
    r = service.api("POST", "/api/v1/consoles", json={"target": vnc_target, "recording": True})
    assert r.status_code == 400
    assert "recording is not configured on this service" in r.json()["details"]


def test_with_policy_always_every_console_is_recorded(guacd, tmp_path_factory, vnc_target):
    s = recorded_service(tmp_path_factory, guacd, "always", policy="always")
    try:
        assert s.create(vnc_target)["recording"] is True
    finally:
        s.stop()


def test_recordings_older_than_the_retention_are_removed(guacd, tmp_path_factory, vnc_target,
                                                         tunnel):
    s = recorded_service(tmp_path_factory, guacd, "retention", retention=3600)
    try:
        old, new = s.create(vnc_target, recording=True), s.create(vnc_target, recording=True)
        asyncio.run(type_into(tunnel, old, ": a"))
        asyncio.run(type_into(tunnel, new, ": b"))
        old_file = s.recordings / old["id"]
        settled(old_file)
        two_hours_ago = time.time() - 7200         # as if the recording were that old
        os.utime(old_file, (two_hours_ago, two_hours_ago))
        deadline = time.monotonic() + 15           # the sweeper runs every 5 s
        while old_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not old_file.exists()
        assert (s.recordings / new["id"]).exists()
        r = s.api("GET", f"/api/v1/consoles/{old['id']}/recording")
        assert r.status_code == 404 and "removed after the retention" in r.json()["details"]
        assert s.api("GET", f"/api/v1/consoles/{new['id']}/recording").status_code == 200
        assert f"console {old['id']}: recording.removed" in s.log_text()
    finally:
        s.stop()


def test_a_guacd_writing_where_guacbridge_cannot_see_is_reported(guacd, tmp_path_factory,
                                                                 vnc_target, tunnel):
    """guacd on another host without the shared volume: guacd writes into its own folder."""
    elsewhere = tmp_path_factory.mktemp("guacd-host-only")
    s = recorded_service(tmp_path_factory, guacd, "unshared", guacd_dir=str(elsewhere))
    try:
        reply = s.create(vnc_target, recording=True)
        asyncio.run(type_into(tunnel, reply, ": a"))
        assert (elsewhere / reply["id"]).exists()       # guacd did write it
        r = s.api("GET", f"/api/v1/consoles/{reply['id']}/recording")
        assert r.status_code == 404
        details = r.json()["details"]
        assert str(elsewhere) in details and str(s.recordings) in details
        assert "guacd and guacbridge must share that directory" in details
    finally:
        s.stop()


def test_readiness_reports_a_recordings_directory_it_cannot_have(guacd, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bad-dir")
    (workdir / "a-file").write_text("")
    s = recorded_service(tmp_path_factory, guacd, "bad-dir",
                         dir=str(workdir / "a-file" / "recordings"))
    try:
        r = s.api("GET", "/readyz")
        assert r.status_code == 503
        assert "does not exist" in r.json()["checks"]["recordings"]
    finally:
        s.stop()


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    """A key that may open consoles but not read recordings, and another owner's reader."""
    found = {"opener": secrets.token_urlsafe(32), "other": secrets.token_urlsafe(32)}
    leaks.remember(*found.values())
    return found


@pytest.fixture(scope="module")
def keyed_recorded(guacd, tmp_path_factory, keys):
    workdir = tmp_path_factory.mktemp("keyed-recorded")
    scopes = {"opener": ["create"], "other": ["read"]}
    blocks = [apikeys.toml_block(apikeys.ApiKey(name, apikeys.digest(keys[name]),
                                                frozenset(scopes[name]))) for name in scopes]
    folder = workdir / "recordings"
    (workdir / "guacbridge.toml").write_text(f'[recordings]\ndir = "{folder}"\n\n'
                                            + "\n".join(blocks))
    s = start_service(workdir, f"{guacd.host}:{guacd.port}",
                      GUACBRIDGE_CONFIG=str(workdir / "guacbridge.toml"))
    s.recordings = folder
    yield s
    s.stop()


def desktop_now(vnc_desktop) -> Image.Image:
    """The desktop as its X server has it (Xvnc's own framebuffer, not guacd's picture)."""
    dump = subprocess.run(["xwd", "-root", "-silent", "-display", f":{vnc_desktop.display}"],
                          capture_output=True, check=True, timeout=10).stdout
    return xwd_image(dump)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean difference of two same-sized pictures per colour channel, 0 … 255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_a_parts_thumbnail_is_the_desktop_it_recorded(keyed_recorded, vnc_desktop, vnc_target,
                                                      tunnel, keys):
    s = keyed_recorded
    opened = s.api("POST", "/api/v1/consoles", key=keys["opener"],
                   json={"target": vnc_target, "recording": True})
    assert opened.status_code == 201, opened.text
    reply = opened.json()
    asyncio.run(type_into(tunnel, reply, ": thumbnail"))
    desktop = desktop_now(vnc_desktop)
    path = f"/api/v1/consoles/{reply['id']}/recording/0/thumbnail"

    r = s.api("GET", path)                                  # the admin key may read it
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "image/png"
    thumbnail = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert thumbnail.size == (160, 120)                     # 1024x768, 160 wide
    assert max(ImageStat.Stat(thumbnail).stddev) > 20       # not one flat colour
    seen = desktop.resize(thumbnail.size, Image.Resampling.LANCZOS)
    blank = Image.new("RGB", thumbnail.size)
    assert difference(thumbnail, seen) < 4, difference(thumbnail, seen)    # 0.4 measured
    assert difference(blank, seen) > 40                    # 79 measured: not black

    wide = s.api("GET", path + "?width=512")
    assert Image.open(io.BytesIO(wide.content)).size == (512, 384)
    bad = s.api("GET", path + "?width=5000")
    assert bad.status_code == 400 and "from 16 to 1024" in bad.json()["details"]
    missing = s.api("GET", f"/api/v1/consoles/{reply['id']}/recording/7/thumbnail")
    assert missing.status_code == 404
    assert missing.json()["details"] == f"console {reply['id']} has no recording part 7"

    # Who may read the recording may see its thumbnail; nobody else.
    refused = s.api("GET", path, key=keys["opener"])
    assert refused.status_code == 403 and "lacks the scope 'read'" in refused.json()["details"]
    theirs = s.api("GET", path, key=keys["other"])
    assert theirs.status_code == 404 and "no console" in theirs.json()["details"]
    assert s.api("GET", path, key=None).status_code == 401
    player = s.api("GET", f"/api/v1/consoles/{reply['id']}/recording").json()["player_url"]
    page = f"{s.base_url}/recording/{reply['id']}"
    assert requests.get(f"{page}/file/0/thumbnail", timeout=5).status_code == 403
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(player).fragment)["token"][0]
    session = requests.post(f"{page}/session", json={"token": token}, timeout=5).json()
    leaks.remember(session["session"])
    seen_by_player = requests.get(f"{page}/file/0/thumbnail", timeout=5,
                                  headers={"X-Playback-Session": session["session"]})
    assert seen_by_player.status_code == 200 and seen_by_player.content == r.content
