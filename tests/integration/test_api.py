"""The REST API as a client sees it: statuses, JSON details, no secrets, no tracebacks."""
import pytest

pytestmark = pytest.mark.integration

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "127.0.0.1", "port": 5999,
          "password": "s3cr3tpw"}


def test_health_needs_no_key(service):
    r = service.api("GET", "/healthz", key=None)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("key, words", [(None, "API key is required"),
                                        ("not-the-key", "not valid")])
def test_console_creation_needs_a_valid_api_key(service, key, words):
    r = service.api("POST", "/api/v1/consoles", key=key, json={"target": TARGET})
    assert r.status_code == 401
    assert r.json() == {"result": False, "details": r.json()["details"]}
    assert words in r.json()["details"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_create_get_delete(service):
    r = service.api("POST", "/api/v1/consoles", json={"target": TARGET, "user": "alice"})
    assert r.status_code == 201
    reply = r.json()
    assert r.headers["Location"] == f"/api/v1/consoles/{reply['id']}"
    assert reply["url"].startswith(f"{service.base_url}/console/{reply['id']}#token=")
    assert reply["websocket"]["path"] == "/tunnel"
    shown = service.get(reply["id"])
    assert shown["state"] == "pending" and shown["user"] == "alice" and "websocket" not in shown
    assert "s3cr3tpw" not in str(shown) and reply["websocket"]["token"] not in str(shown)
    closed = service.delete(reply["id"])
    assert closed["state"] == "closed" and closed["close_reason"] == "closed by API key tests"


def test_extend_a_pending_console(service):
    reply = service.create(TARGET, max_duration=600)
    r = service.api("POST", f"/api/v1/consoles/{reply['id']}/extend", json={"seconds": 60})
    assert r.status_code == 200 and r.json()["state"] == "pending"
    r = service.api("POST", f"/api/v1/consoles/{reply['id']}/extend", json={"seconds": "x"})
    assert r.status_code == 400 and "seconds" in r.json()["details"]


@pytest.mark.parametrize("method, path, body, status, words", [
    ("POST", "/api/v1/consoles", b"{not json", 400, "not valid JSON"),
    ("POST", "/api/v1/consoles", b'{"target": {"protocol": "vnc"}}', 400, "hostname"),
    ("GET", "/api/v1/consoles/00000000-0000-0000-0000-000000000000", None, 404, "no console"),
    ("DELETE", "/api/v1/consoles/nope", None, 404, "no console"),
    ("GET", "/api/v1/nothing-here", None, 404, "no such resource"),
    ("PUT", "/api/v1/consoles", b"{}", 405, "Method Not Allowed"),
])
def test_errors_are_json_with_details_and_never_a_traceback(service, method, path, body,
                                                            status, words):
    r = service.api(method, path, data=body)
    assert r.status_code == status
    assert r.json()["result"] is False and words in r.json()["details"]
    assert "Traceback" not in r.text


def test_an_oversized_body_is_refused_and_the_service_carries_on(service):
    import requests
    try:
        r = service.api("POST", "/api/v1/consoles", data=b"x" * 200_000)
        assert r.status_code == 400
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        pass                     # refused before the body was read: the peer resets
    assert service.api("GET", "/healthz", key=None).ok


def test_the_console_page_and_its_scripts_are_served(service):
    reply = service.create(TARGET)
    page = service.api("GET", f"/console/{reply['id']}", key=None)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    js = service.api("GET", "/static/vendor/guacamole-common.js", key=None)
    assert js.status_code == 200 and "export default Guacamole" in js.text
    assert service.api("GET", "/static/console.js", key=None).status_code == 200
    assert service.api("GET", "/static/package.json", key=None).status_code == 404
