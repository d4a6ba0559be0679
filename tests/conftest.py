"""Fixtures for the real parts, one per part, started once per session and stopped by pid.

A missing program is a skip on a laptop and a failure under CI=true: CI must never pass by
testing nothing.
"""
from __future__ import annotations

import os
import secrets

import pytest

from guacbridge import demo
from parts import require, unavailable

pytest_plugins = ["service_fixtures", "db_fixtures", "broker_fixtures",
                  "terminal_fixtures"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real servers (guacd, Xvnc)")
    config.addinivalue_line("markers", "e2e: drives a real browser")


@pytest.fixture(scope="session")
def guacd(tmp_path_factory):
    require("guacd", "guacd")
    g = demo.start_guacd(tmp_path_factory.mktemp("guacd"), log_level="debug")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def vnc_desktop(tmp_path_factory):
    for program, package in (("Xvnc", "tigervnc-standalone-server"), ("twm", "twm"),
                             ("xterm", "xterm"), ("vncpasswd", "tigervnc-tools"),
                             ("xwininfo", "x11-utils")):
        require(program, package)
    d = demo.start_desktop(tmp_path_factory.mktemp("desktop"), password=secrets.token_hex(4))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def browser():
    """Per module: Playwright's sync API keeps an event loop running in this thread until it
    stops, and other tests call asyncio.run()."""
    if not os.path.exists(CHROMIUM):
        unavailable("chromium is not installed (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()
