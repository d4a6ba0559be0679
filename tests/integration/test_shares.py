"""Sharing a live console against the real guacd and Xvnc: a share link is one-time, the
viewer's tunnel joins the owner's guacd connection, and revoking the share or closing the
console ends the viewer's tunnel with a status that says why. (What the viewer's keys do on
the X server is tested in the browser: tests/e2e/test_sharing.py.)"""
import asyncio
import contextlib
from urllib.parse import urlencode

import pytest
import requests
import tornado.websocket

from service_fixtures import TunnelClient
from test_recordings import recorded_service

pytestmark = pytest.mark.integration

SESSION_CLOSED, UPSTREAM_UNAVAILABLE, CLIENT_UNAUTHORIZED = 0x020B, 0x0208, 0x0301


def share(service, console_id: str, **body) -> dict:
    r = service.api("POST", f"/api/v1/consoles/{console_id}/shares", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def join(service, reply: dict) -> requests.Response:
    """What the viewer's page does with the link: trade the token for its own secret."""
    token = reply["url"].split("#share=", 1)[1]
    return requests.post(f"{service.base_url}/console/{reply['console_id']}/join",
                         json={"token": token}, timeout=10)


@contextlib.asynccontextmanager
async def viewer_tunnel(service, console_id: str, secret: str):
    query = urlencode({"console": console_id, "share": secret, "width": 800, "height": 600})
    url = f"{service.base_url.replace('http', 'ws')}/tunnel?{query}"
    conn = await tornado.websocket.websocket_connect(url, subprotocols=["guacamole"])
    try:
        yield TunnelClient(conn)
    finally:
        conn.close()


def test_a_share_link_works_once_and_its_viewer_sees_the_live_console(service, vnc_target,
                                                                      tunnel):
    reply = service.create(vnc_target)
    link = share(service, reply["id"], mode="view", ttl=60)
    assert link["url"].startswith(f"{service.base_url}/console/{reply['id']}#share=")
    assert link["mode"] == "view" and link["state"] == "pending"
    first = join(service, link)
    assert first.status_code == 201 and first.json()["mode"] == "view"
    again = join(service, link)
    assert again.status_code == 403
    assert again.json()["details"] == "this share link has already been used"

    async def scenario():
        async with tunnel(reply) as owner:
            await owner.until("sync")
            async with viewer_tunnel(service, reply["id"], first.json()["session"]) as viewer:
                seen = await viewer.until("sync")
                assert "size" in seen and "img" in seen       # the owner's screen, drawn
                listed = service.api("GET", f"/api/v1/consoles/{reply['id']}/shares").json()
                assert [s["watching"] for s in listed["shares"]] == [True]
    asyncio.run(scenario())
    assert "share.joined" in service.log_text() and "share.watching" in service.log_text()


def test_revoking_a_share_ends_the_viewers_tunnel_with_a_clear_status(service, vnc_target,
                                                                     tunnel):
    reply = service.create(vnc_target)
    link = share(service, reply["id"], mode="control")
    secret = join(service, link).json()["session"]

    async def scenario():
        async with tunnel(reply) as owner:
            await owner.until("sync")
            async with viewer_tunnel(service, reply["id"], secret) as viewer:
                await viewer.until("sync")
                r = await asyncio.to_thread(
                    service.api, "DELETE", f"/api/v1/consoles/{reply['id']}/shares/{link['id']}")
                assert r.status_code == 200 and r.json()["state"] == "revoked"
                status, message, close = await viewer.closing()
                assert status == SESSION_CLOSED
                assert message == "The console's owner has stopped sharing it with you."
                assert close == (1002, str(SESSION_CLOSED))
            await owner.drain(0.5)                 # the owner's console goes on
            assert owner.error is None
        # The revoked share's secret opens nothing any more.
        async with viewer_tunnel(service, reply["id"], secret) as viewer:
            status, message, _ = await viewer.closing()
            assert status == CLIENT_UNAUTHORIZED and "has ended" in message
    asyncio.run(scenario())
    assert "share.revoked" in service.log_text()


def test_closing_the_console_ends_its_viewers(service, vnc_target, tunnel):
    reply = service.create(vnc_target)
    secret = join(service, share(service, reply["id"])).json()["session"]

    async def scenario():
        async with tunnel(reply) as owner:
            await owner.until("sync")
            async with viewer_tunnel(service, reply["id"], secret) as viewer:
                await viewer.until("sync")
                await asyncio.to_thread(service.delete, reply["id"])
                status, message, _ = await viewer.closing()
                assert status == SESSION_CLOSED and "has ended" in message
    asyncio.run(scenario())
    shares = service.api("GET", f"/api/v1/consoles/{reply['id']}/shares").json()["shares"]
    assert [s["state"] for s in shares] == ["ended"]


def test_a_viewer_before_the_owner_is_told_to_wait(service, vnc_target):
    reply = service.create(vnc_target)
    secret = join(service, share(service, reply["id"])).json()["session"]

    async def scenario():
        async with viewer_tunnel(service, reply["id"], secret) as viewer:
            status, message, _ = await viewer.closing()
            assert status == UPSTREAM_UNAVAILABLE
            assert message.startswith("The console's owner is not connected right now")
    asyncio.run(scenario())


@pytest.mark.parametrize("body, words", [
    ({"mode": "edit"}, 'mode must be "view" or "control"'),
    ({"mode": "view", "ttl": 0}, "ttl must be a whole number of seconds from 1 to 3600"),
    ({"mode": "view", "who": "bob"}, "unknown field(s): who"),
])
def test_a_malformed_share_request_is_refused(service, vnc_target, body, words):
    reply = service.create(vnc_target)
    r = service.api("POST", f"/api/v1/consoles/{reply['id']}/shares", json=body)
    assert r.status_code == 400 and r.json() == {"result": False, "details": words}


def test_a_closed_console_cannot_be_shared_and_shares_need_a_key(service, vnc_target):
    reply = service.create(vnc_target)
    assert service.api("POST", f"/api/v1/consoles/{reply['id']}/shares", key=None,
                       json={}).status_code == 401
    service.delete(reply["id"])
    r = service.api("POST", f"/api/v1/consoles/{reply['id']}/shares", json={})
    assert r.status_code == 409 and "cannot be shared" in r.json()["details"]


def test_a_share_link_does_not_open_another_console(service, vnc_target):
    one, other = service.create(vnc_target), service.create(vnc_target)
    link = share(service, one["id"])
    token = link["url"].split("#share=", 1)[1]
    r = requests.post(f"{service.base_url}/console/{other['id']}/join", json={"token": token},
                      timeout=10)
    assert r.status_code == 403 and r.json()["details"] == "this link does not belong to this page"
    assert join(service, link).status_code == 403        # and it is burnt


def test_when_the_owners_page_reconnects_the_viewer_follows(service, vnc_target, tunnel):
    reply = service.create(vnc_target)
    page = requests.post(f"{service.base_url}/console/{reply['id']}/session",
                         json={"token": reply["websocket"]["token"]}, timeout=10).json()
    secret = join(service, share(service, reply["id"])).json()["session"]
    as_page = {"console": reply["id"], "session": page["session"]}

    async def scenario():
        async with tunnel(reply, **as_page) as owner:
            await owner.until("sync")
            async with viewer_tunnel(service, reply["id"], secret) as viewer:
                await viewer.until("sync")
                owner.conn.close()                 # the owner's network drops
                status, message, _ = await viewer.closing()
                assert status == UPSTREAM_UNAVAILABLE
                assert "the view resumes when they are" in message
        async with tunnel(reply, **as_page) as owner:     # the owner's page comes back
            await owner.until("sync")
            async with viewer_tunnel(service, reply["id"], secret) as viewer:
                seen = await viewer.until("sync")       # and so does the viewer's
                assert "img" in seen and viewer.error is None
    asyncio.run(scenario())


def test_a_viewers_secret_does_not_fetch_the_recording(guacd, tmp_path_factory, vnc_target):
    """Watching from now on is not reading what happened before."""
    s = recorded_service(tmp_path_factory, guacd, "viewer-no-playback")
    try:
        reply = s.create(vnc_target, recording=True)
        secret = join(s, share(s, reply["id"])).json()["session"]
        r = requests.get(f"{s.base_url}/recording/{reply['id']}/file/0",
                         headers={"X-Playback-Session": secret}, timeout=10)
        assert r.status_code == 403
        assert r.json()["details"] == "this playback session is not valid"
    finally:
        s.stop()
