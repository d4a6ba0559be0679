"""Fixtures for guacbridge itself: the service as a real subprocess (the way an operator runs
it) and a WebSocket client that speaks to its tunnel like guacamole-common-js does."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import secrets
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest
import requests
import tornado.httpclient
import tornado.websocket

import leaks
from guacbridge import demo, protocol
from guacbridge.demo import free_port
from parts import require, stop_process


@dataclasses.dataclass
class Service:
    base_url: str
    api_key: str
    process: subprocess.Popen
    log_path: pathlib.Path
    verify: str | bool = True        # with TLS: the test CA's certificate file

    def api(self, method: str, path: str, key: str | None = "default", **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if key is not None:
            key = self.api_key if key == "default" else key
            headers["Authorization"] = f"Bearer {key}"
            leaks.remember(key)
        leaks.remember_in(kw.get("json"))
        r = requests.request(method, self.base_url + path, headers=headers, timeout=10,
                             verify=self.verify, **kw)
        if "json" in r.headers.get("Content-Type", ""):
            try:
                leaks.remember_in(r.json())
            except ValueError:
                pass
        return r

    def create(self, target: dict, **request) -> dict:
        r = self.api("POST", "/api/v1/consoles", json={"target": target, **request})
        assert r.status_code == 201, r.text
        return r.json()

    def get(self, console_id: str) -> dict:
        return self.api("GET", f"/api/v1/consoles/{console_id}").json()

    def delete(self, console_id: str) -> dict:
        return self.api("DELETE", f"/api/v1/consoles/{console_id}").json()

    def session(self, console_id: str, ready=lambda s: s is not None and s["tunnel"],
                timeout: float = 5.0) -> dict | None:
        """The console's entry in ``/api/v1/sessions`` once ``ready(entry)`` holds (entry
        None: not listed). Instances report their tunnels in the background, so another
        instance's listing is a moment behind; past *timeout* the last entry is returned."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.api("GET", "/api/v1/sessions")
            assert r.status_code == 200, r.text
            entry = next((s for s in r.json()["sessions"] if s["id"] == console_id), None)
            if ready(entry) or time.monotonic() > deadline:
                return entry
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def start_service(workdir: pathlib.Path, guacd: str, port: int | None = None, tls=None,
                  **env: str) -> Service:
    """``guacbridge serve`` on *port* (default: a free one); with *tls* (a TestCA) over
    HTTPS with the CA's server certificate."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_key = secrets.token_urlsafe(24)
    leaks.remember(api_key)
    log_path = workdir / "guacbridge.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GUACBRIDGE_")}
    environ.update({"GUACBRIDGE_LISTEN": f"127.0.0.1:{port}", "GUACBRIDGE_GUACD": guacd,
                    "GUACBRIDGE_API_KEYS": f"tests:{api_key}",
                    "GUACBRIDGE_DATA_DIR": str(workdir / "data"),
                    "GUACBRIDGE_DRAIN_SECONDS": "2",     # stop() waits 10 s, then kills
                    # The test desktops, sshd and telnetd are on loopback, which the target
                    # policy refuses unless allowed; the ports of guacbridge's own parts stay
                    # refused (they need an entry with the port). "" gives the default policy.
                    "GUACBRIDGE_POLICY_ALLOW": "127.0.0.0/8",
                    **env})
    if tls is not None:
        environ.update(GUACBRIDGE_TLS_CERT=str(tls.cert), GUACBRIDGE_TLS_KEY=str(tls.key))
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "guacbridge.cli", "--log-level",
                                    "debug", "serve"], env=environ, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    scheme = "https" if tls is not None else "http"
    service = Service(f"{scheme}://127.0.0.1:{port}", api_key, process, log_path,
                      verify=str(tls.ca_cert) if tls is not None else True)
    deadline = time.monotonic() + 20
    while True:
        try:
            # Another instance may share the port (reuse_port): only our log says it is up.
            if requests.get(service.base_url + "/healthz", timeout=1,
                            verify=service.verify).ok and "listening on" in service.log_text():
                return service
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"guacbridge serve did not start:\n{service.log_text()[-3000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def service(guacd, tmp_path_factory):
    s = start_service(tmp_path_factory.mktemp("service"), f"{guacd.host}:{guacd.port}")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def tls_service(guacd, test_ca, tmp_path_factory):
    """guacbridge over HTTPS with the test CA's server certificate."""
    s = start_service(tmp_path_factory.mktemp("tls-service"), f"{guacd.host}:{guacd.port}",
                      tls=test_ca)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def twin_services(guacd, mariadb, tmp_path_factory):
    """Two instances sharing one MariaDB grant store (and its key), as behind a balancer."""
    from guacbridge.keyring import new_key
    from guacbridge.store.mysql import MysqlGrantStore
    url = mariadb.create_database(f"gb_{secrets.token_hex(4)}")
    MysqlGrantStore(url).create_tables()
    env = {"GUACBRIDGE_MYSQL_URL": url, "GUACBRIDGE_SECRET_KEYS": new_key("shared")}
    workdir = tmp_path_factory.mktemp("twins")
    a = start_service(workdir / "a", f"{guacd.host}:{guacd.port}", GUACBRIDGE_INSTANCE="a",
                      **env)
    b = start_service(workdir / "b", f"{guacd.host}:{guacd.port}", GUACBRIDGE_INSTANCE="b",
                      **env)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="session")
def service_without_guacd(tmp_path_factory):
    s = start_service(tmp_path_factory.mktemp("service-no-guacd"), f"127.0.0.1:{free_port()}")
    yield s
    s.stop()


@pytest.fixture
def two_guacd(tmp_path):
    """Two guacd of our own: a test may kill one."""
    require("guacd", "guacd")
    pair = [demo.start_guacd(tmp_path / name) for name in ("guacd-a", "guacd-b")]
    yield pair
    for g in pair:
        g.stop()


@pytest.fixture
def pooled_service(two_guacd, tmp_path):
    """guacbridge with both as its pool: GUACBRIDGE_GUACD=a,b."""
    s = start_service(tmp_path / "service", ",".join(f"{g.host}:{g.port}" for g in two_guacd))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def vnc_target(vnc_desktop) -> dict:
    return {"agent": "static", "protocol": "vnc", "hostname": vnc_desktop.host,
            "port": vnc_desktop.port, "password": vnc_desktop.password}


class TunnelClient:
    """Reads like a browser: answers every ``sync`` so guacd keeps sending."""

    def __init__(self, conn: tornado.websocket.WebSocketClientConnection) -> None:
        self.conn = conn
        self.error: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        """Like a browser, a reply to a message read after the server closed is dropped."""
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.conn.write_message(text)

    async def next_message(self, timeout: float = 10) -> str:
        message = await asyncio.wait_for(self.conn.read_message(), timeout)
        if message is None:
            raise EOFError(f"tunnel closed: {self.conn.close_code} {self.conn.close_reason}")
        return message

    def _handle(self, message: str) -> list[list[str]]:
        instructions = [protocol.parse(raw) for raw in protocol.split(message)]
        for elements in instructions:
            if elements[0] == "sync":
                self.send(protocol.encode("sync", elements[1]))
            elif elements[0] == "error":
                self.error = (int(elements[2]), elements[1])
        return instructions

    async def until(self, opcode: str, timeout: float = 10) -> dict[str, list[list[str]]]:
        """Instructions by opcode, up to and including the first *opcode*."""
        seen: dict[str, list[list[str]]] = {}
        deadline = time.monotonic() + timeout
        while opcode not in seen:
            for elements in self._handle(await self.next_message(deadline - time.monotonic())):
                seen.setdefault(elements[0], []).append(elements[1:])
        return seen

    async def wait_for_raw(self, raw: str, timeout: float = 5) -> str:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next_message(deadline - time.monotonic())
            self._handle(message)
            if raw in protocol.split(message):
                return raw

    async def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                self._handle(await self.next_message(max(deadline - time.monotonic(), 0.001)))

    async def closing(self, timeout: float = 10) -> tuple[int | None, str, tuple]:
        """Read to the end: (error status, error message, (close code, close reason))."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(EOFError):
            while True:
                self._handle(await self.next_message(deadline - time.monotonic()))
        status, message = self.error or (None, "")
        return status, message, (self.conn.close_code, self.conn.close_reason)


@pytest.fixture
def tunnel():
    """``async with tunnel(reply) as t`` opens the reply's WebSocket like the console page."""
    _default = object()

    @contextlib.asynccontextmanager
    async def open_tunnel(reply: dict, extra=_default, ssl_options=None, headers=None, **query):
        ws = reply["websocket"]
        # A page's reconnect secret (query console=…, session=…) replaces the token.
        params = {} if "session" in query else {"token": ws["token"]}
        params.update({"width": 1024, "height": 768, "dpi": 96, "timezone": "Europe/Berlin",
                       **query})
        extra = ws["extra"] if extra is _default else extra
        if extra:
            params["extra"] = extra
        scheme = "wss" if ws["secure"] else "ws"
        url = f"{scheme}://{ws['host']}:{ws['port']}{ws['path']}?{urlencode(params)}"
        request = tornado.httpclient.HTTPRequest(url, headers=headers or {},
                                                 ssl_options=ssl_options)
        conn = await tornado.websocket.websocket_connect(request, subprotocols=["guacamole"])
        try:
            yield TunnelClient(conn)
        finally:
            conn.close()
    return open_tunnel
