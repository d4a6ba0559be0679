"""The tree stays clean: ruff (lint and import order, ruff.toml) and mypy (types, mypy.ini)
find nothing in guacbridge/. Both run from the same environment as the tests, so a finding
fails the suite with the tools' own report."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(module, path=str(pathlib.Path(sys.executable).parent)) is None:
        pytest.fail(f"{module} is not installed beside {sys.executable} "
                    f"(pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


def test_ruff_finds_nothing_in_guacbridge():
    result = run("ruff", "check", "--no-fix", "--output-format", "concise", "guacbridge")
    if result.returncode:
        pytest.fail(f"ruff:\n{result.stdout}{result.stderr}", pytrace=False)


def test_mypy_finds_nothing_in_guacbridge():
    result = run("mypy", "--config-file", "mypy.ini")      # its files and cache: mypy.ini
    if result.returncode:
        pytest.fail(f"mypy:\n{result.stdout}{result.stderr}", pytrace=False)
