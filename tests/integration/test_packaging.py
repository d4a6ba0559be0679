"""`pip install .` in a clean venv gives a service that serves its page and guacamole-common-js."""
import os
import pathlib
import subprocess
import sys
import time
import venv
import zipfile

import pytest
import requests

from guacbridge.demo import free_port

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_wheel_carries_the_page_and_serves_it_from_a_clean_venv(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=300)
    wheel = next(wheels.glob("guacbridge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "guacbridge/_data/html/console.html" in names
    assert "guacbridge/_data/html/vendor/guacamole-common.js" in names
    assert "guacbridge/_data/sql/sqlite.sql" in names
    assert not [n for n in names if "node_modules" in n or n.endswith("package.json")]

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   timeout=300)
    port = free_port()
    server = subprocess.Popen([str(env_dir / "bin" / "guacbridge"), "serve", "--listen",
                               f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        page = requests.get(base + "/console/00000000-0000-0000-0000-000000000000", timeout=5)
        js = requests.get(base + "/static/vendor/guacamole-common.js", timeout=5)
        own = requests.get(base + "/static/console.js", timeout=5)
    finally:
        server.terminate()
        server.wait(10)
    assert page.status_code == 200 and "console.js" in page.text
    assert js.status_code == 200 and "Guacamole.WebSocketTunnel" in js.text
    assert own.status_code == 200 and "vendor/guacamole-common.js" in own.text
