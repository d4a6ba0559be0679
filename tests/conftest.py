"""Fixtures for the real parts, one per part, started once per session and stopped by pid.

A missing program is a skip on a laptop and a failure under CI=true: CI must never pass by
testing nothing. ``require`` and ``unavailable`` live in ``parts.py`` because the other fixture
modules need them too, and a conftest is not importable.
"""
from __future__ import annotations

import os
import pathlib
import secrets

import pytest

import leaks
from guacbridge import demo
from parts import CHROMIUM_ARGS, require, unavailable

pytest_plugins = ["service_fixtures", "db_fixtures", "broker_fixtures",
                  "terminal_fixtures", "tls_fixtures", "nginx_fixtures", "ipmi_fixtures"]

CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real servers (guacd, Xvnc)")
    config.addinivalue_line("markers", "e2e: drives a real browser")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory):
    """After the last test, with every server stopped: no token or password that the tests
    used is in any log file of the session (see leaks.py)."""
    yield
    found = leaks.find(tmp_path_factory.getbasetemp())
    assert not found, "secrets in log files:\n" + "\n".join(found)


@pytest.fixture(scope="session")
def workdir_root(tmp_path_factory) -> pathlib.Path:
    """One directory for the session's parts: their logs are in one place after a failure."""
    return tmp_path_factory.mktemp("parts")


@pytest.fixture(scope="session")
def guacd(workdir_root):
    require("guacd", "guacd")
    g = demo.start_guacd(workdir_root / "guacd", log_level="debug")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def vnc_desktop(workdir_root):
    for program, package in (("Xvnc", "tigervnc-standalone-server"), ("twm", "twm"),
                             ("xterm", "xterm"), ("vncpasswd", "tigervnc-tools"),
                             ("xwininfo", "x11-utils")):
        require(program, package)
    d = demo.start_desktop(workdir_root / "desktop", password=secrets.token_hex(4))
    leaks.remember(d.password)
    yield d
    d.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium: no tool may download a browser of its own."""
    if not os.path.exists(CHROMIUM):
        unavailable("chromium is not installed (Debian package chromium; run deploy/install.sh)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Per module, not per session: Playwright's sync API keeps an event loop running in this
    thread until it stops, and other tests call asyncio.run()."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()
    pw.stop()
