"""The parts a benchmark run starts, each its own process on loopback, stopped by pid.

- ``Standin``: the guacd stand-in (bench/standin.py) every relay talks to.
- The relays under test, behind one small interface — ``url(mode)`` gives the WebSocket
  host, port and path (with its credentials) for a console whose stand-in plays *mode*:
  ``BareNode`` (bench/bare_relay.js on Node.js's ``ws``, the ceiling), ``Bare`` (its Tornado
  twin, bench/bare_relay.py), ``Guacbridge`` (``guacbridge serve``, a
  console made through its API like any user), ``GuacamoleLite`` (npm, an encrypted token
  made here from its README's format), ``Guapy`` (PyPI, under uvicorn); and two variants
  of guacbridge: ``GuacbridgePythonScan`` (bench/variant_serve.py: its boundary scan
  in Python only, as a build without a compiler runs: the C scan's before) and
  ``GuacbridgeAsyncio`` (on asyncio's own event loop, as where uvloop is not installed;
  ``Guacbridge`` runs on uvloop, which bench/requirements.txt installs).
"""
from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: pathlib.Path,
                  timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{log.stem} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)


class Process:
    """One started program: its pid's CPU seconds and resident memory, and a stop by pid."""

    name = ""

    def __init__(self, argv: list[str], workdir: pathlib.Path, port: int,
                 env: dict[str, str] | None = None) -> None:
        self.port = port
        self.log = workdir / f"{self.name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})},
                                            start_new_session=True)
        wait_for_port(port, self.process, self.log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = pathlib.Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Standin(Process):
    name = "standin"

    def __init__(self, workdir: pathlib.Path) -> None:
        port = free_port()
        super().__init__([sys.executable, str(BENCH / "standin.py"), str(port)], workdir, port)


class Relay(Process):
    label = ""

    def url(self, mode: str) -> tuple[str, int, str]:
        raise NotImplementedError

    def urls(self, mode: str, count: int) -> list[tuple[str, int, str]]:
        """*count* consoles' URLs at once (the idle phase opens thousands)."""
        return [self.url(mode) for _ in range(count)]


class BareNode(Relay):
    name, label = "bare_node", "bare Node.js ws relay (ceiling)"

    def __init__(self, workdir: pathlib.Path, guacd_port: int) -> None:
        port = free_port()
        super().__init__(["node", str(BENCH / "bare_relay.js"), str(port), str(guacd_port)],
                         workdir, port)

    def url(self, mode: str) -> tuple[str, int, str]:
        return "127.0.0.1", self.port, f"/?hostname={mode}"


class Bare(Relay):
    name, label = "bare", "bare Tornado relay"

    def __init__(self, workdir: pathlib.Path, guacd_port: int) -> None:
        port = free_port()
        super().__init__([sys.executable, str(BENCH / "bare_relay.py"), str(port),
                          str(guacd_port)], workdir, port)

    def url(self, mode: str) -> tuple[str, int, str]:
        return "127.0.0.1", self.port, f"/?hostname={mode}"


class Guapy(Relay):
    name, label = "guapy", "guapy 2.0 (uvicorn)"

    def __init__(self, workdir: pathlib.Path, guacd_port: int) -> None:
        port = free_port()
        super().__init__([sys.executable, str(BENCH / "guapy_server.py"), str(port),
                          str(guacd_port)], workdir, port)

    def url(self, mode: str) -> tuple[str, int, str]:
        return "127.0.0.1", self.port, f"/?hostname={mode}"


class GuacamoleLite(Relay):
    name, label = "guacamole_lite", "guacamole-lite 1.2 (Node.js)"

    def __init__(self, workdir: pathlib.Path, guacd_port: int) -> None:
        port = free_port()
        self.key = secrets.token_hex(16).encode()     # 32 characters: an AES-256 key
        super().__init__(["node", str(BENCH / "lite_server.js"), str(port), str(guacd_port),
                          self.key.decode()], workdir, port)

    def url(self, mode: str) -> tuple[str, int, str]:
        token = {"connection": {"type": "vnc", "settings": {"hostname": mode, "port": "5900"}}}
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        plain = padder.update(json.dumps(token).encode()) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        value = encryptor.update(plain) + encryptor.finalize()
        wrapped = json.dumps({"iv": base64.b64encode(iv).decode(),
                              "value": base64.b64encode(value).decode()})
        return "127.0.0.1", self.port, "/?token=" + quote(base64.b64encode(wrapped.encode()))


class Guacbridge(Relay):
    name, label = "guacbridge", "guacbridge"
    options: list[str] = []          # for bench/variant_serve.py; none: guacbridge as shipped

    def __init__(self, workdir: pathlib.Path, guacd_port: int, **env: str) -> None:
        port = free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.api_key}"
        self.base_url = f"http://127.0.0.1:{port}"
        # One client address opens thousands of consoles here: the rate limits, a policy
        # for the open internet, would measure themselves.
        config = workdir / f"guacbridge-{port}.toml"
        config.write_text('[limits]\ncreate_per_key = "off"\ncreate_per_address = "off"\n'
                          'connect_per_address = "off"\nconnections_per_address = 0\n')
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GUACBRIDGE_")}
        environ.update({"GUACBRIDGE_LISTEN": f"127.0.0.1:{port}",
                        "GUACBRIDGE_GUACD": f"127.0.0.1:{guacd_port}",
                        "GUACBRIDGE_API_KEYS": f"bench:{self.api_key}",
                        "GUACBRIDGE_DATA_DIR": str(workdir / f"data-{port}"),
                        "GUACBRIDGE_CONFIG": str(config),
                        "PYTHONPATH": str(ROOT), **env})
        # The environment is passed whole: the service must not inherit another's settings.
        self.log = workdir / f"{self.name}-{port}.log"
        self.port = port
        with self.log.open("wb") as out:
            argv = [sys.executable, str(BENCH / "variant_serve.py"), *self.options] \
                if self.options else [sys.executable, "-m", "guacbridge.cli", "serve"]
            self.process = subprocess.Popen(argv, cwd=ROOT, env=environ,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(port, self.process, self.log)

    def url(self, mode: str) -> tuple[str, int, str]:
        return self._url(self.http, mode)

    def _url(self, http: requests.Session, mode: str) -> tuple[str, int, str]:
        reply = http.post(self.base_url + "/api/v1/consoles", timeout=30, json={
            # An address the target policy lets through (the stand-in never connects to it);
            # the stand-in's mode travels as the VNC password.
            "target": {"agent": "static", "protocol": "vnc", "hostname": "192.0.2.10",
                       "port": 5900, "password": mode}})
        if reply.status_code != 201:
            raise RuntimeError(f"POST /api/v1/consoles: {reply.status_code} {reply.text}")
        ws = reply.json()["websocket"]
        return ws["host"], ws["port"], f"{ws['path']}?token={ws['token']}"

    def urls(self, mode: str, count: int) -> list[tuple[str, int, str]]:
        """Made by 4 clients at once, each with its own HTTP session."""
        def some(share: int) -> list[tuple[str, int, str]]:
            with requests.Session() as http:
                http.headers.update(self.http.headers)
                return [self._url(http, mode) for _ in range(share)]
        shares = [count // 4 + (i < count % 4) for i in range(4)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return [u for part in pool.map(some, shares) for u in part]


class GuacbridgePythonScan(Guacbridge):
    """guacbridge built without a compiler: Framer.feed's Python loop, no C scan."""
    name, label = "guacbridge_py", "guacbridge, Python scan only"
    options = ["--python-scan"]


class GuacbridgeAsyncio(Guacbridge):
    """guacbridge where uvloop is not installed: asyncio's own event loop."""
    name, label = "guacbridge_asyncio", "guacbridge on asyncio's loop (no uvloop)"

    def __init__(self, workdir: pathlib.Path, guacd_port: int, **env: str) -> None:
        super().__init__(workdir, guacd_port, **{"GUACBRIDGE_EVENT_LOOP": "asyncio", **env})
