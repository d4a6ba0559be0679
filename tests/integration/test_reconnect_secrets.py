"""The console page's reconnect secret is rotated at every resume, through the real tunnel
(guacbridge serve → guacd 1.3.0 → Xvnc): the new one comes over the WebSocket, the old one is
refused once the new one has been used, so a secret read from a log cannot be replayed."""
import asyncio

import pytest

import leaks
from guacbridge.sessions import SECRET_OPCODE
from guacbridge.status import Status

pytestmark = pytest.mark.integration
REPLACED = "this console session was resumed elsewhere with a newer secret"


def page_session(service, reply) -> str:
    traded = service.api("POST", f"/console/{reply['id']}/session", key=None,
                         json={"token": reply["websocket"]["token"]})
    assert traded.status_code == 201, traded.text
    return traded.json()["session"]


def page_call(service, reply, secret):
    """The page's own status call, with *secret* in its header."""
    return service.api("GET", f"/console/{reply['id']}/session", key=None,
                       headers={"X-Console-Session": secret})


def resume(tunnel, reply, secret):
    """(the new secret the tunnel sent, what else arrived) for a resume that works."""
    async def scenario():
        async with tunnel(reply, console=reply["id"], session=secret) as t:
            seen = await t.until("sync")
            return seen
    seen = asyncio.run(scenario())
    assert "error" not in seen and {"size", "img"} <= seen.keys()
    [[new]] = seen[SECRET_OPCODE]
    leaks.remember(new)
    return new


def refused(tunnel, reply, secret):
    async def scenario():
        async with tunnel(reply, console=reply["id"], session=secret) as t:
            return await t.closing()
    return asyncio.run(scenario())


def test_a_resumed_pages_old_secret_is_refused_with_a_clear_status(service, vnc_target,
                                                                   tunnel):
    reply = service.create(vnc_target)
    s1 = page_session(service, reply)
    s2 = resume(tunnel, reply, s1)
    assert s2 != s1 and len(s2) >= 43
    # The page's calls sent with s1 before the notice arrived still work…
    assert page_call(service, reply, s1).status_code == 200
    # …until the page uses s2 (it does at once): then s1 is dead for every use.
    assert page_call(service, reply, s2).status_code == 200
    answer = page_call(service, reply, s1)
    assert answer.status_code == 403 and "resumed elsewhere" in answer.json()["details"]
    status, message, (code, _) = refused(tunnel, reply, s1)
    assert status == Status.CLIENT_UNAUTHORIZED and REPLACED in message
    assert code == Status.CLIENT_UNAUTHORIZED.websocket
    events = service.api("GET", f"/api/v1/consoles/{reply['id']}/events").json()["events"]
    replayed = [e["data"] for e in events if e["kind"] == "refused"]       # audited
    assert [r["reason"] for r in replayed] == [REPLACED + "; this page can no longer reconnect"
                                               " to it"] and replayed[0]["by"] == "tunnel"
    assert replayed[0]["client_address"] == "127.0.0.1"
    s3 = resume(tunnel, reply, s2)                         # the page's next reconnect
    assert s3 not in (s1, s2)


def test_a_page_that_lost_the_new_secret_is_not_locked_out(service, vnc_target, tunnel):
    reply = service.create(vnc_target)
    s1 = page_session(service, reply)
    lost = resume(tunnel, reply, s1)        # the tunnel drops before the page reads it
    s3 = resume(tunnel, reply, s1)          # the page comes back with what it has
    status, message, _ = refused(tunnel, reply, lost)    # the undelivered one is replaced
    assert status == Status.CLIENT_UNAUTHORIZED and REPLACED in message
    assert resume(tunnel, reply, s3) not in (s1, s3)


def test_a_raw_token_tunnel_gets_no_secret(service, vnc_target, tunnel):
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:
            return await t.until("sync")
    seen = asyncio.run(scenario())
    assert "error" not in seen and SECRET_OPCODE not in seen
