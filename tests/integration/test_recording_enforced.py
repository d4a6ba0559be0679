"""Recording cannot be escaped (``recordings.policy = "always"``), against the real guacd and
Xvnc: a connection whose recording guacd could not create ends with a clear status before
its desktop reaches the client; a recorded console still records; and guacbridge names each
connection's part itself, so a console past guacd's own 255 suffixes is still recorded."""
import asyncio
import time

import pytest

from guacbridge import protocol
from test_recordings import recorded_service as service_of
from test_recordings import settled, type_into

pytestmark = pytest.mark.integration

def recorded_service(tmp_path_factory, guacd, name, vnc_target, **recordings):
    """The test desktop is on loopback, which the target policy refuses unless allowed."""
    allow = {"GUACBRIDGE_POLICY_ALLOW": f"{vnc_target['hostname']}:{vnc_target['port']}"}
    return service_of(tmp_path_factory, guacd, name, env=allow, **recordings)


MUST = "This console must be recorded and its recording could not be created"


async def refused_before_shown(tunnel, reply: dict) -> tuple[tuple, float, list[str]]:
    """Open the console like a browser; (what ended it, seconds open, opcodes seen)."""
    started = time.monotonic()
    seen: list[str] = []
    async with tunnel(reply) as t:
        while time.monotonic() - started < 10:      # a console left running fails below
            try:
                message = await t.next_message(10)
            except EOFError:
                break
            seen += [protocol.parse(raw)[0] for raw in protocol.split(message)]
            t._handle(message)
        ended = (t.error, (t.conn.close_code, t.conn.close_reason))
    return ended, time.monotonic() - started, seen


def test_a_console_guacd_cannot_record_ends_before_it_is_shown(guacd, tmp_path_factory,
                                                               vnc_target, tunnel):
    """guacd's creation fails for real: its folder lies under a plain file (the tests run as
    root, for whom a read-only mode is no obstacle)."""
    blocked = tmp_path_factory.mktemp("not-a-dir") / "a-file"
    blocked.write_text("")
    s = recorded_service(tmp_path_factory, guacd, "enforced", vnc_target,
                         policy="always", guacd_dir=str(blocked / "recordings"),
                         verify_timeout=0.5)
    try:
        reply = s.create(vnc_target)
        assert reply["recording"] is True
        (status, close), seconds, seen = asyncio.run(refused_before_shown(tunnel, reply))
        assert status is not None and status[0] == 0x0200 and status[1].startswith(MUST)
        assert close == (1011, str(0x0200))
        assert "sync" not in seen and "img" not in seen     # no frame reached the client
        assert seconds < 5, seconds
        log = s.log_text()
        assert f"recording could not be created: guacd made no file {reply['id']}" in log
        assert "the connection ends (recordings.policy = always)" in log
        assert "Creation of recording failed" in guacd.part.log_path.read_text(
            errors="replace")
        closed = s.get(reply["id"])       # a console without a page has no reconnect
        assert closed["close_reason"].startswith("recording could not be created")
    finally:
        s.stop()


def test_a_recording_guacbridge_cannot_see_is_not_taken_for_one(guacd, tmp_path_factory,
                                                                vnc_target, tunnel):
    """guacd on another host without the shared volume: guacd records, but where guacbridge
    cannot check, hand out or expire it, so the connection ends the same way."""
    elsewhere = tmp_path_factory.mktemp("guacd-host-only")
    s = recorded_service(tmp_path_factory, guacd, "enforced-unshared", vnc_target,
                         policy="always", guacd_dir=str(elsewhere), verify_timeout=0.5)
    try:
        reply = s.create(vnc_target)
        (status, _), _, seen = asyncio.run(refused_before_shown(tunnel, reply))
        assert status[1].startswith(MUST) and "sync" not in seen
        where = f"{elsewhere} (as guacd sees it; {s.recordings} here)"
        assert f"no file {reply['id']} in {where}" in s.log_text()
    finally:
        s.stop()


def test_an_always_recorded_console_still_records(guacd, tmp_path_factory, vnc_target,
                                                  tunnel):
    s = recorded_service(tmp_path_factory, guacd, "enforced-ok", vnc_target, policy="always")
    try:
        reply = s.create(vnc_target)
        asyncio.run(type_into(tunnel, reply, ": always"))      # frames flow for 2.5 s
        settled(s.recordings / reply["id"])
        body = s.api("GET", f"/api/v1/consoles/{reply['id']}/recording").json()
        assert [f["part"] for f in body["files"]] == [0] and body["duration"] > 1.5
        assert "could not be created" not in s.log_text()
    finally:
        s.stop()


def test_guacbridge_names_the_parts_past_guacds_255(guacd, tmp_path_factory, vnc_target,
                                                    tunnel):
    """A console reconnected 256 times: guacd alone would find <id> … <id>.255 taken, record
    nothing and carry on. The earlier parts are stand-ins written here."""
    s = recorded_service(tmp_path_factory, guacd, "many-parts", vnc_target, policy="always")
    try:
        reply = s.create(vnc_target)
        console = reply["id"]
        frame = (protocol.encode("size", 0, 64, 64) + protocol.encode("sync", 1000)).encode()
        (s.recordings / console).write_bytes(frame)
        for part in range(1, 256):
            (s.recordings / f"{console}.{part}").write_bytes(frame)
        asyncio.run(type_into(tunnel, reply, ": part 256"))
        newest = s.recordings / f"{console}.256"
        assert newest.exists()
        settled(newest)
        body = s.api("GET", f"/api/v1/consoles/{console}/recording").json()
        assert [f["part"] for f in body["files"]] == list(range(257))
        raw = s.api("GET", f"/api/v1/consoles/{console}/recording/256")
        assert raw.status_code == 200 and b"4.sync," in raw.content
        assert len(raw.content) > len(frame) * 10       # a real session, not a stand-in
    finally:
        s.stop()
