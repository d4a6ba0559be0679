"""Browser-test helpers: a TCP proxy whose connections a test can cut (a network drop), a
desktop with a key logger, and a folder for screenshots."""
from __future__ import annotations

import os
import pathlib
import re
import secrets
import socket
import threading
import time

import pytest

import leaks
from guacbridge import demo


class CuttableProxy:
    """Forwards 127.0.0.1:port to the service; ``cut()`` drops every live connection the
    way a network failure does. Keeps each connection's first line (the HTTP request)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        first = record
        try:
            while data := src.recv(65536):
                if first:
                    self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def url(self, service_url: str) -> str:
        return re.sub(r"//127\.0\.0\.1:\d+", f"//127.0.0.1:{self.port}", service_url)

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def page(browser):
    """A page in a context of its own (a fresh tab with no storage), at a laptop's size."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def clipboard_page(browser):
    """Like ``page``, with the browser clipboard's read and write permitted (as a person
    allows it when the console asks)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield context.new_page()
    context.close()


@pytest.fixture
def proxy(service):
    p = CuttableProxy(int(service.base_url.rsplit(":", 1)[1]))
    yield p
    p.close()


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    """Screenshots land here (CI keeps the folder); GUACBRIDGE_TEST_ARTIFACTS moves it."""
    path = pathlib.Path(os.environ.get("GUACBRIDGE_TEST_ARTIFACTS",
                                       pathlib.Path(__file__).parent / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class KeyLog:
    """xev in its own window on a desktop: what keys the X server delivered."""

    def __init__(self, part: demo.Part, geometry: tuple[int, int, int, int]) -> None:
        self.part = part
        self.geometry = geometry     # x, y, width, height of xev's window on the desktop

    def keysyms(self) -> list[str]:
        text = self.part.log_path.read_text(errors="replace")
        return re.findall(r"KeyPress event.*?\(keysym 0x[0-9a-f]+, (\w+)\)", text, re.S)

    def wait_for(self, names: list[str], timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.keysyms()
            if _contains_in_order(seen, names) or time.monotonic() > deadline:
                return seen
            time.sleep(0.1)


def _contains_in_order(seen: list[str], names: list[str]) -> bool:
    it = iter(seen)
    return all(name in it for name in names)


# Where xev's window sits on the 1024x768 desktop (right half, below the xterm).
KEYLOG_GEOMETRY = (620, 450, 380, 280)


@pytest.fixture(scope="module")
def keylog_desktop(tmp_path_factory, vnc_desktop):
    """A desktop of its own: Ctrl-Alt-Backspace must not end the shared one."""
    d = demo.start_desktop(tmp_path_factory.mktemp("keylog-desktop"),
                           password=secrets.token_hex(4))
    leaks.remember(d.password)
    x, y, w, h = KEYLOG_GEOMETRY
    part = d.run("xev", ["stdbuf", "-oL", "xev", "-geometry", f"{w}x{h}+{x}+{y}",
                         "-name", "keylog", "-event", "keyboard"])
    time.sleep(0.5)
    yield d, KeyLog(part, KEYLOG_GEOMETRY)
    d.stop()
