"""What a fixture does when a real part is missing (skip on a laptop, fail under CI=true), and
how it stops one (by pid)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

# Flags that keep Debian's chromium quiet in a closed network: no sandbox (it runs as root),
# no GPU, and none of its background calls out (updates, sync, QUIC).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: a missing part fails the run)", pytrace=False)
    pytest.skip(why)


def require(program: str, package: str) -> None:
    if shutil.which(program) is None and shutil.which(program, path="/usr/sbin:/usr/bin") is None:
        unavailable(f"{program} is not installed (Debian package {package}; run deploy/install.sh)")


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM, and SIGKILL if it is still there after *grace* seconds."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
