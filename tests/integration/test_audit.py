"""Audit on real parts: a console's events tell who opened it from where and how it ended, the
sessions list shows who is connected now, and an operator ends a session from any instance."""
import asyncio
import json
import subprocess
import sys
import time

import pytest

from guacbridge.audit import REPORT_EVERY

pytestmark = pytest.mark.integration
GUACBRIDGE = [sys.executable, "-m", "guacbridge.cli"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0"


def wait_for_events(service, console_id, kinds, timeout=5.0):
    """The console's events once they include every kind in *kinds* (written as things end)."""
    deadline = time.monotonic() + timeout
    while True:
        r = service.api("GET", f"/api/v1/consoles/{console_id}/events")
        assert r.status_code == 200, r.text
        events = r.json()["events"]
        if {e["kind"] for e in events} >= set(kinds) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_a_consoles_events_tell_who_used_it_from_where_and_how_it_ended(
        service, vnc_target, tunnel):
    reply = service.create(vnc_target, user="alice")

    async def scenario():
        async with tunnel(reply, headers={"User-Agent": BROWSER}) as t:
            await t.until("sync")
            await t.drain(0.3)                # the client answers syncs: bytes from it
            await asyncio.to_thread(service.api, "POST",
                                    f"/api/v1/consoles/{reply['id']}/extend",
                                    json={"seconds": 600})
            await asyncio.to_thread(service.delete, reply["id"])
            return await t.closing()
    status, message, _ = asyncio.run(scenario())
    assert status == 0x020B
    events = wait_for_events(service, reply["id"], ["tunnel_ended", "closed"])
    kinds = [e["kind"] for e in events]
    assert kinds[:4] == ["created", "consumed", "tunnel_started", "extended"]
    assert sorted(kinds[4:]) == ["closed", "tunnel_ended"]
    by_kind = {e["kind"]: e["data"] for e in events}
    assert by_kind["created"] == {"owner": "tests", "user": "alice", "sink": "direct",
                                  "protocol": "vnc", "hostname": vnc_target["hostname"]}
    assert by_kind["consumed"]["client_address"] == "127.0.0.1"
    assert by_kind["consumed"]["user_agent"] == BROWSER and by_kind["consumed"]["by"] == "tunnel"
    assert by_kind["extended"]["seconds"] == 600
    assert by_kind["closed"] == {"reason": "closed by API key tests"}
    ended = by_kind["tunnel_ended"]
    assert ended["reason"] == "closed by API key tests"
    assert ended["bytes_to_browser"] > 1000 and ended["bytes_from_browser"] > 0
    assert {e["instance"] for e in events} == {events[0]["instance"]}     # one instance
    text = json.dumps(events)
    assert vnc_target["password"] not in text and reply["websocket"]["token"] not in text


def test_a_second_use_of_a_link_is_recorded_with_who_tried(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as first:
            await first.until("sync")
            async with tunnel(reply, headers={"User-Agent": "curl/8.0"}) as second:
                return await second.closing()
    status, message, _ = asyncio.run(scenario())
    assert status == 0x0301
    events = wait_for_events(service, reply["id"], ["refused"])
    refused = next(e["data"] for e in events if e["kind"] == "refused")
    assert refused == {"by": "tunnel", "reason": "this console link has already been used",
                       "client_address": "127.0.0.1", "user_agent": "curl/8.0"}


def test_the_events_of_an_unknown_console_are_a_404(service):
    r = service.api("GET", "/api/v1/consoles/00000000-0000-0000-0000-000000000000/events")
    assert r.status_code == 404 and r.json()["result"] is False


def test_sessions_lists_who_is_connected_from_where_and_the_bytes_so_far(
        service, vnc_target, tunnel):
    reply = service.create(vnc_target, user="bob")
    pending = service.create(vnc_target, user="nobody-yet")

    async def scenario():
        async with tunnel(reply, headers={"User-Agent": BROWSER}) as t:
            await t.until("sync")
            return await asyncio.to_thread(service.api, "GET", "/api/v1/sessions")
    r = asyncio.run(scenario())
    assert r.status_code == 200
    listed = {s["id"]: s for s in r.json()["sessions"]}
    assert pending["id"] not in listed                    # not in use: not a session
    mine = listed[reply["id"]]
    assert mine["user"] == "bob" and mine["owner"] == "tests"
    assert mine["state"] in ("connecting", "active") and mine["deadline"]
    assert mine["target"] == {"protocol": "vnc", "hostname": vnc_target["hostname"],
                              "port": str(vnc_target["port"])}
    t = mine["tunnel"]
    assert t["client_address"] == "127.0.0.1" and t["user_agent"] == BROWSER
    assert t["instance"] == r.json()["instance"] and t["bytes_to_browser"] > 0
    assert "password" not in r.text and reply["websocket"]["token"] not in r.text
    assert service.session(reply["id"], ready=lambda s: s is None) is None  # it ended


def test_the_sessions_command_lists_and_kills_a_live_console(service, vnc_target, tunnel,
                                                             tmp_path):
    reply = service.create(vnc_target, user="carol")
    key_file = tmp_path / "ops.key"
    key_file.write_text(service.api_key + "\n")
    cli = lambda *a: subprocess.run(GUACBRIDGE + ["sessions", "--url", service.base_url,
                                                  "--key-file", str(key_file), *a],
                                    capture_output=True, text=True, timeout=30,
                                    env={"PATH": "/usr/bin:/bin"})

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            listing = await asyncio.to_thread(cli)
            killed = await asyncio.to_thread(cli, "--kill", reply["id"])
            return listing, killed, await t.closing()
    listing, killed, (status, message, _) = asyncio.run(scenario())
    assert listing.returncode == 0, listing.stderr
    line = next(l for l in listing.stdout.splitlines() if reply["id"] in l)
    assert "carol" in line and "127.0.0.1" in line and f"vnc://{vnc_target['hostname']}" in line
    assert killed.returncode == 0 and "closed: closed by API key tests" in killed.stdout
    assert status == 0x020B and "closed by API key tests" in message
    events = cli("--events", reply["id"])
    assert "consumed" in events.stdout and "client_address=127.0.0.1" in events.stdout
    wrong = subprocess.run(GUACBRIDGE + ["sessions", "--url", service.base_url, "--key-file",
                                         "-"], input="not-a-key", capture_output=True,
                           text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert wrong.returncode == 1 and "401: the API key is not valid" in wrong.stderr


def test_deleting_on_one_instance_ends_the_tunnel_on_another_within_a_second(
        twin_services, vnc_target, tunnel):
    a, b = twin_services
    reply = b.create(vnc_target, user="dave")            # its tunnel goes to b

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            # b reports its byte counts every REPORT_EVERY seconds; a reads them from the store.
            mine = await asyncio.to_thread(
                a.session, reply["id"], lambda s: s and s["tunnel"]
                and s["tunnel"]["bytes_to_browser"] > 0, REPORT_EVERY + 10)
            deleted = await asyncio.to_thread(a.delete, reply["id"])
            answered = time.monotonic()                  # the close is recorded now
            result = await t.closing(timeout=5)
            return mine, deleted, result, time.monotonic() - answered
    mine, deleted, (status, message, close), took = asyncio.run(scenario())
    assert mine["tunnel"]["instance"] == "b"                                 # seen from a
    assert mine["tunnel"]["bytes_to_browser"] > 0                            # b's report
    assert deleted["state"] == "closed"
    assert status == 0x020B and "closed by API key tests" in message and close[1] == "523"
    assert took < 1.0
    events = wait_for_events(a, reply["id"], ["tunnel_ended"])
    where = {e["kind"]: e["instance"] for e in events}
    assert where["created"] == "b" and where["closed"] == "a" and where["tunnel_ended"] == "b"
