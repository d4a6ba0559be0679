"""What a fixture does when a real part is missing: skip on a laptop, fail under CI=true."""
from __future__ import annotations

import os
import shutil

import pytest

# Flags that keep Debian's chromium quiet in a closed network (real-parts.md).
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
