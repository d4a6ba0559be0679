"""SIGTERM on a service with live tunnels: it stops accepting at once, tells each browser to
move, waits its drain time for them, closes what is left with 0x0208 and exits cleanly."""
import asyncio
import os
import signal
import socket

import pytest
import requests

from service_fixtures import start_service

pytestmark = pytest.mark.integration


def test_sigterm_tells_the_browser_then_closes_what_did_not_move(guacd, vnc_target, tunnel,
                                                                 tmp_path):
    service = start_service(tmp_path, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_DRAIN_SECONDS="1")
    port = int(service.base_url.rsplit(":", 1)[1])
    reply = service.create(vnc_target)

    async def scenario():
        async with tunnel(reply) as t:          # a client that does not know the notice
            await t.until("sync")
            os.kill(service.process.pid, signal.SIGTERM)
            seen = await t.until("guacbridge-restart")
            with pytest.raises(ConnectionRefusedError):     # no longer accepting
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            status, message, close = await t.closing()
            return seen["guacbridge-restart"][0], status, message, close
    try:
        notice, status, message, close = asyncio.run(scenario())
        assert notice == ["The console service is restarting."]
        assert status == 0x0208 and "restarting" in message       # left after the drain
        assert close[1] == str(0x0208)
        assert service.process.wait(10) == 0
        assert "1 live tunnel(s) asked to move" in service.log_text()
    finally:
        service.stop()


def test_sigterm_without_consoles_exits_at_once(guacd, tmp_path):
    service = start_service(tmp_path, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_DRAIN_SECONDS="600")
    try:
        os.kill(service.process.pid, signal.SIGTERM)
        assert service.process.wait(10) == 0          # nothing to drain: no 600 s wait
    finally:
        service.stop()


def test_while_draining_it_reports_not_ready_and_a_second_sigterm_ends_it(guacd, vnc_target,
                                                                          tunnel, tmp_path):
    service = start_service(tmp_path, f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_DRAIN_SECONDS="600")
    reply = service.create(vnc_target)

    balancer = requests.Session()           # a load balancer's kept-alive health checks
    assert balancer.get(service.base_url + "/readyz", timeout=5).status_code == 200

    async def scenario():
        async with tunnel(reply) as t:
            await t.until("sync")
            os.kill(service.process.pid, signal.SIGTERM)
            await t.until("guacbridge-restart")
            draining = await asyncio.to_thread(balancer.get, service.base_url + "/readyz",
                                               timeout=5)
            os.kill(service.process.pid, signal.SIGTERM)        # the operator insists
            return draining, await t.closing()
    try:
        draining, (status, message, _) = asyncio.run(scenario())
        assert draining.status_code == 503
        assert "shutting down" in draining.json()["checks"]["accepting"]
        assert status == 0x0208
        assert service.process.wait(10) == 0
    finally:
        service.stop()
