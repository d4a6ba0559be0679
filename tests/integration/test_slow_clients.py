"""Slow and hostile clients on the real service: sockets that trickle a request head byte by
byte are cut off at the header timeout while /healthz keeps answering fast, a trickling body
at the body timeout; a client holding
more connections than the per-address cap gets the next one closed at once (a trusted proxy
does not); a deeply nested JSON body is a 400 with details, not a 500."""
from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time

import pytest
import requests

from service_fixtures import start_service

pytestmark = pytest.mark.integration
SLOW_SOCKETS = 300
HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 64


def config_file(tmp_path, text: str) -> str:
    path = tmp_path / "guacbridge.toml"
    path.write_text(text)
    return str(path)


def closed_by_peer(sock: socket.socket, wait: float = 0.0) -> bool:
    """The service closed *sock*: EOF or a reset, seen within *wait* seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def healthz_seconds(base_url: str) -> float:
    """One /healthz on a new connection, as a load balancer's probe asks it."""
    started = time.monotonic()
    r = requests.get(base_url + "/healthz", timeout=5)
    assert r.status_code == 200, r.text
    return time.monotonic() - started


def test_sockets_trickling_a_request_head_are_dropped_and_healthz_stays_fast(guacd, tmp_path):
    """The slowloris attack: each socket sends one header byte a second, never finishing its
    head. Tornado's own "idle" timeout would count every byte as activity if it were an idle
    timer; the header timeout is a deadline for the whole head."""
    service = start_service(
        tmp_path / "svc", f"{guacd.host}:{guacd.port}",
        GUACBRIDGE_CONFIG=config_file(tmp_path, "[limits]\nheader_timeout = 2\n"
                                                "connections_per_address = 1000\n"))
    sockets: list[socket.socket] = []
    stop = threading.Event()
    try:
        for _ in range(SLOW_SOCKETS):
            sock = socket.create_connection(("127.0.0.1", int(service.base_url.rsplit(":", 1)[1])))
            sock.setblocking(False)
            sockets.append(sock)
        opened = time.monotonic()
        sent = dict.fromkeys(range(SLOW_SOCKETS), 0)
        dropped: dict[int, float] = {}

        def trickle() -> None:               # one byte per socket per second, never all
            while not stop.is_set():
                for i, sock in enumerate(sockets):
                    if i in dropped:
                        continue
                    if closed_by_peer(sock):
                        dropped[i] = time.monotonic() - opened
                        continue
                    with contextlib.suppress(BlockingIOError, OSError):
                        sock.send(HEAD[sent[i]:sent[i] + 1])
                        sent[i] = min(sent[i] + 1, len(HEAD) - 1)
                stop.wait(1.0)
        dripper = threading.Thread(target=trickle, daemon=True)
        dripper.start()
        latencies = []
        while time.monotonic() - opened < 5 and len(dropped) < SLOW_SOCKETS:
            latencies.append(healthz_seconds(service.base_url))
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while len(dropped) < SLOW_SOCKETS and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        dripper.join(5)
        print(f"/healthz under {SLOW_SOCKETS} slow sockets: {len(latencies)} probes, "
              f"max {max(latencies) * 1000:.1f} ms, "
              f"median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms; "
              f"last socket dropped after {max(dropped.values(), default=0):.1f} s")
        assert len(dropped) == SLOW_SOCKETS, \
            f"{SLOW_SOCKETS - len(dropped)} trickling sockets still open after 10 s"
        assert max(dropped.values()) < 2 + 3       # the 2 s timeout, a drip's second, slack
        assert max(sent.values()) > 1              # they were trickling, not silent
        assert latencies and max(latencies) < 1.0, latencies
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        service.stop()


def test_a_body_trickling_in_is_cut_off_at_the_body_timeout(guacd, tmp_path):
    service = start_service(
        tmp_path / "svc", f"{guacd.host}:{guacd.port}",
        GUACBRIDGE_CONFIG=config_file(tmp_path, "[limits]\nheader_timeout = 30\n"
                                                "body_timeout = 2\n"))
    port = int(service.base_url.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /api/v1/consoles HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            started = time.monotonic()
            while not closed_by_peer(sock, wait=1.0):
                assert time.monotonic() - started < 2 + 3, "the slow body was not cut off"
                with contextlib.suppress(OSError):
                    sock.send(b" ")                  # a byte a second: never the 1000
        assert time.monotonic() - started >= 1.5     # the timeout, not something sooner
    finally:
        service.stop()


def test_a_client_over_the_connection_cap_gets_the_next_one_closed(guacd, tmp_path):
    service = start_service(
        tmp_path / "svc", f"{guacd.host}:{guacd.port}",
        GUACBRIDGE_CONFIG=config_file(tmp_path, "[limits]\nconnections_per_address = 5\n"))
    port = int(service.base_url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        time.sleep(0.3)                             # the service has accepted all five
        extra = socket.create_connection(("127.0.0.1", port))
        with extra:
            assert closed_by_peer(extra, wait=2), "the sixth connection was not closed"
        with pytest.raises(requests.ConnectionError):
            requests.get(service.base_url + "/healthz", timeout=5)
        assert "holds 5 open connections, the cap" in service.log_text()
        held.pop().close()                          # one goes: there is room again
        deadline = time.monotonic() + 5
        while True:
            try:
                assert requests.get(service.base_url + "/healthz", timeout=5).ok
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "no room after a connection closed"
                time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        service.stop()


def test_live_tunnels_count_toward_the_connection_cap(guacd, vnc_target, tunnel, tmp_path):
    """WebSocket tunnels are connections too: three live consoles fill a cap of three."""
    service = start_service(
        tmp_path / "svc", f"{guacd.host}:{guacd.port}",
        GUACBRIDGE_CONFIG=config_file(tmp_path, "[limits]\nconnections_per_address = 3\n"))
    port = int(service.base_url.rsplit(":", 1)[1])
    replies = [service.create(vnc_target) for _ in range(3)]   # each call's connection closes

    async def scenario() -> tuple[bool, bool]:
        async with contextlib.AsyncExitStack() as stack:
            for reply in replies:
                t = await stack.enter_async_context(tunnel(reply))
                assert "error" not in await t.until("sync")
            with socket.create_connection(("127.0.0.1", port)) as extra:
                full = closed_by_peer(extra, wait=2)
        # The tunnels are closed: the address has room again.
        await asyncio.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port)) as again:
            return full, not closed_by_peer(again, wait=0.5)
    try:
        full, room_again = asyncio.run(scenario())
        assert full, "a connection over the cap was accepted while three tunnels were live"
        assert room_again
    finally:
        service.stop()


def test_a_trusted_proxy_is_not_capped(guacd, tmp_path):
    """Behind a reverse proxy every client shares the proxy's address."""
    service = start_service(
        tmp_path / "svc", f"{guacd.host}:{guacd.port}", GUACBRIDGE_TRUSTED_PROXIES="127.0.0.1",
        GUACBRIDGE_CONFIG=config_file(tmp_path, "[limits]\nconnections_per_address = 5\n"))
    port = int(service.base_url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        time.sleep(0.3)
        assert not any(closed_by_peer(sock, wait=0.2) for sock in held)
        assert requests.get(service.base_url + "/healthz", timeout=5).ok
    finally:
        for sock in held:
            sock.close()
        service.stop()


@pytest.mark.parametrize("body", [
    "[" * 60000,                                             # the parser's recursion
    '{"target": {"agent": "static", "x": ' + "[" * 40 + "]" * 40 + "}}",   # past the bound
], ids=["60000-brackets", "40-levels"])
def test_a_deeply_nested_json_body_is_a_400_with_details(service, body):
    r = service.api("POST", "/api/v1/consoles", data=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json() == {"result": False,
                        "details": "the request body nests JSON deeper than 32 levels"}
