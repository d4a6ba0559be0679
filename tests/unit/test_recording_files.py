"""What a console request may ask of recording, the guacd parameters guacbridge sets for
it (and the part each connection records into), and how a recording's files are found,
measured and expired."""
import asyncio
import os
import time

import pytest

from guacbridge import config, protocol
from guacbridge.recordings import RecordingError, Recordings

CONSOLE = "0f9c8d2e-1111-4222-8333-444455556666"


def recordings(tmp_path, **settings) -> Recordings:
    return Recordings(config.load(env={}, recordings_dir=str(tmp_path), **settings))


def test_recording_is_off_unless_asked_for_and_keys_only_on_request(tmp_path):
    r = recordings(tmp_path)
    assert r.wanted(None) == (False, False)
    assert r.wanted(True) == (True, False)
    assert r.wanted({"keys": True}) == (True, True)
    assert r.params(CONSOLE, False) == {
        "recording-path": str(tmp_path), "recording-name": CONSOLE,
        "create-recording-path": "true", "recording-include-keys": ""}


def test_policy_always_records_every_console(tmp_path):
    assert recordings(tmp_path, recordings_policy="always").wanted(False) == (True, False)


def test_guacd_gets_its_own_path_for_the_shared_folder(tmp_path):
    r = recordings(tmp_path, recordings_guacd_dir="/srv/guacd/recordings")
    assert r.params(CONSOLE, True)["recording-path"] == "/srv/guacd/recordings"


def test_without_a_folder_recording_cannot_be_asked_for():
    r = Recordings(config.load(env={}))
    assert r.wanted(None) == (False, False)
    with pytest.raises(ValueError, match="recording is not configured"):
        r.wanted(True)


def frames(*timestamps: int) -> bytes:
    return "".join(protocol.encode("size", 0, 1024, 768) + protocol.encode("sync", t)
                   for t in timestamps).encode()


def test_files_of_a_console_are_its_parts_with_size_and_duration(tmp_path):
    (tmp_path / CONSOLE).write_bytes(frames(716900, 719766))
    (tmp_path / f"{CONSOLE}.1").write_bytes(frames(800000, 800500))
    (tmp_path / f"{CONSOLE}-other").write_bytes(b"not ours")
    (tmp_path / "0f9c8d2e-1111-4222-8333-444455556667").write_bytes(frames(1, 2))
    r = recordings(tmp_path)
    described = r.describe(CONSOLE, recorded=True, started=True)
    assert [(f["part"], f["duration"]) for f in described["files"]] == [(0, 2.866), (1, 0.5)]
    assert described["duration"] == 3.366
    assert described["size"] == (tmp_path / CONSOLE).stat().st_size \
        + (tmp_path / f"{CONSOLE}.1").stat().st_size


def test_a_long_recording_is_measured_from_its_ends(tmp_path):
    body = frames(1000) + b"4.blob,1.1,5.AAAAA;" * 40000 + frames(61000)
    (tmp_path / CONSOLE).write_bytes(body)
    assert recordings(tmp_path).files(CONSOLE)[0].duration == 60.0


def test_no_file_says_why(tmp_path):
    r = recordings(tmp_path)
    with pytest.raises(RecordingError, match="was not recorded"):
        r.describe(CONSOLE, recorded=False, started=True)
    with pytest.raises(RecordingError, match="has not been used yet"):
        r.describe(CONSOLE, recorded=True, started=False)
    with pytest.raises(RecordingError, match="must share that directory"):
        r.describe(CONSOLE, recorded=True, started=True)


def test_only_recordings_past_the_retention_are_removed(tmp_path):
    old, new, other = tmp_path / CONSOLE, tmp_path / f"{CONSOLE}.1", tmp_path / "notes.txt"
    for path in (old, new, other):
        path.write_bytes(frames(1, 2))
    hours_ago = time.time() - 7200
    for path in (old, other):
        os.utime(path, (hours_ago, hours_ago))
    removed = recordings(tmp_path, recordings_retention=3600).remove_expired()
    assert removed == [(CONSOLE, CONSOLE)]
    assert not old.exists() and new.exists() and other.exists()


def test_guacbridge_names_each_connections_part_past_guacds_255(tmp_path):
    """guacd's own suffixes stop at .255; the part after that must still get a file name."""
    r = recordings(tmp_path, recordings_policy="always", recordings_verify_timeout=0.5)
    params = r.params(CONSOLE, False)
    named, expected = r.connection(CONSOLE, params)
    assert named["recording-name"] == CONSOLE and expected is not None
    assert (expected.part, expected.path, expected.enforced, expected.timeout) == (
        0, tmp_path / CONSOLE, True, 0.5)
    (tmp_path / CONSOLE).write_bytes(frames(1, 2))
    for part in range(1, 256):
        (tmp_path / f"{CONSOLE}.{part}").write_bytes(frames(1, 2))
    named, expected = r.connection(CONSOLE, params)
    assert named["recording-name"] == f"{CONSOLE}.256" and expected.part == 256
    assert {k: v for k, v in named.items() if k != "recording-name"} == \
        {k: v for k, v in params.items() if k != "recording-name"}
    (tmp_path / f"{CONSOLE}.256").write_bytes(frames(3, 4))
    parts = [f.part for f in r.files(CONSOLE)]
    assert parts == list(range(257))            # in order, 10 after 9, 256 last
    assert r.file(CONSOLE, 256).duration == 0.001


def test_a_console_not_recorded_gets_no_recording_name(tmp_path):
    named, expected = recordings(tmp_path).connection(CONSOLE, {"hostname": "10.0.0.1"})
    assert named == {"hostname": "10.0.0.1"} and expected is None


def test_under_policy_always_a_console_made_unrecorded_is_recorded_all_the_same(tmp_path):
    """Made while the policy was request, opened after it became always."""
    r = recordings(tmp_path, recordings_policy="always")
    named, expected = r.connection(CONSOLE, {"hostname": "10.0.0.1"})
    assert named == {"hostname": "10.0.0.1", **r.params(CONSOLE, False)}
    assert expected is not None and expected.enforced
    (tmp_path / CONSOLE).write_bytes(frames(1, 2))
    assert r.describe(CONSOLE, recorded=False, started=True)["files"][0]["part"] == 0


def test_only_policy_always_waits_for_and_enforces_the_file(tmp_path):
    r = recordings(tmp_path)
    _, expected = r.connection(CONSOLE, r.params(CONSOLE, False))
    assert expected is not None and not expected.enforced and expected.timeout == 0


def test_the_expected_file_is_waited_for_then_reported(tmp_path):
    r = recordings(tmp_path, recordings_policy="always", recordings_verify_timeout=0.3,
                   recordings_guacd_dir="/srv/guacd/rec")
    _, expected = r.connection(CONSOLE, r.params(CONSOLE, False))
    started = time.monotonic()
    assert asyncio.run(r.wait_made(expected)) is False
    assert 0.3 <= time.monotonic() - started < 2
    why = r.unmade(expected)
    assert f"no file {CONSOLE} in /srv/guacd/rec (as guacd sees it; {tmp_path} here)" in why
    assert "within 0.3 s of the first frame" in why

    async def guacd_writes_late():
        await asyncio.sleep(0.1)
        (tmp_path / CONSOLE).write_bytes(b"")

    async def both():
        return (await asyncio.gather(r.wait_made(expected), guacd_writes_late()))[0]
    assert asyncio.run(both()) is True


def test_parts_past_999_expire_like_the_others(tmp_path):
    late = tmp_path / f"{CONSOLE}.1000"
    late.write_bytes(frames(1, 2))
    hours_ago = time.time() - 7200
    os.utime(late, (hours_ago, hours_ago))
    assert recordings(tmp_path, recordings_retention=3600).remove_expired() == [
        (CONSOLE, late.name)]
