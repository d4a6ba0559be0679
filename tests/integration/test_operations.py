"""What operators watch: /metrics moves by the right amounts over a scripted session, and
/readyz says which dependency is missing."""
import asyncio
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def scrape(service) -> dict:
    text = service.api("GET", "/metrics", key=None).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def scrape_when(service, ready, timeout: float = 5.0) -> dict:
    """The metrics once ``ready(values)`` holds: a tunnel's counts land as it finishes
    closing, a moment after the browser has seen the close."""
    deadline = time.monotonic() + timeout
    while True:
        values = scrape(service)
        if ready(values) or time.monotonic() > deadline:
            return values
        time.sleep(0.05)


def delta(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


def test_metrics_count_a_scripted_session(service, vnc_target, tunnel):
    before = scrape(service)
    reply = service.create(vnc_target)

    async def session():
        async with tunnel(reply) as t:
            await t.until("sync")
            during = scrape(service)
            await asyncio.to_thread(service.delete, reply["id"])
            await t.closing()
            return during
    during = asyncio.run(session())
    live = ("guacbridge_live_tunnels", ())
    after = scrape_when(service, lambda m: m[live] <= before[live])
    assert during[("guacbridge_live_tunnels", ())] >= 1
    assert delta(before, after, "guacbridge_consoles_opened_total", sink="direct") == 1
    assert delta(before, after, "guacbridge_consoles_closed_total", reason="api",
                 sink="direct") == 1
    assert delta(before, after, "guacbridge_guacd_handshake_seconds_count") == 1
    assert delta(before, after, "guacbridge_agent_seconds_count", agent="static") == 1
    assert delta(before, after, "guacbridge_tunnel_characters_total",
                 direction="to_browser") > 1000          # a frame of the desktop at least
    assert delta(before, after, "guacbridge_tunnel_characters_total",
                 direction="to_guacd") > 0               # the sync replies
    assert delta(before, after, "guacbridge_http_requests_total", route="ConsolesHandler",
                 method="POST", status="201") == 1
    assert delta(before, after, "guacbridge_http_requests_total", route="ConsoleHandler",
                 method="DELETE", status="200") == 1


def test_readyz_checks_guacd_and_the_grant_store(service, service_without_guacd):
    r = service.api("GET", "/readyz", key=None)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["checks"] == {"guacd": "ok", "grant_store": "ok"}
    assert [(g["up"], g["live_tunnels"]) for g in body["guacd"]] == [(True, 0)]
    r = service_without_guacd.api("GET", "/readyz", key=None)
    body = r.json()
    assert r.status_code == 503 and body["checks"]["guacd"].startswith("no guacd is up: ")
    assert "not reachable" in body["checks"]["guacd"] and body["guacd"][0]["up"] is False
    assert service.api("GET", "/healthz", key=None).json() == {"status": "ok"}


def test_json_logs_parse_and_carry_the_console_id(guacd, vnc_target, tunnel, tmp_path):
    import json
    from service_fixtures import start_service
    service = start_service(tmp_path / "svc", f"{guacd.host}:{guacd.port}",
                            GUACBRIDGE_LOG_FORMAT="json")
    try:
        reply = service.create(vnc_target)

        async def session():
            async with tunnel(reply) as t:
                await t.until("sync")
            await asyncio.sleep(0.3)
        asyncio.run(session())
        service.api("POST", f"/api/v1/consoles/{reply['id']}/extend", json={"seconds": 60})
    finally:
        service.stop()
    lines = [json.loads(line) for line in service.log_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    about = [e for e in lines if reply["id"] in e["message"]
             or e["logger"] == "guacbridge.web.tunnel"]
    assert len(about) >= 3          # opened, tunnel up, tunnel closed / ended
    assert all(e.get("console_id") == reply["id"] for e in about), about
