"""`python -m build` gives an sdist and a wheel; the wheel, installed in a clean venv with
no npm, gives a service that serves its page and guacamole-common-js."""
import pathlib
import subprocess
import sys
import tarfile
import time
import venv
import zipfile

import pytest
import requests

from guacbridge.demo import free_port

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_wheel_carries_the_page_and_serves_it_from_a_clean_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                   check=True, timeout=600, capture_output=True)
    sdist = next(dist.glob("guacbridge-*.tar.gz"))
    members = tarfile.open(sdist).getnames()
    assert any(m.endswith("html/console.js") for m in members)
    assert any(m.endswith("sql/mysql.sql") for m in members)
    assert not any("node_modules" in m for m in members)     # npm brings it at build time
    assert any(m.endswith("guacbridge/_framescan.c") for m in members)
    wheel = next(dist.glob("guacbridge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "guacbridge/_data/html/console.html" in names
    assert "guacbridge/_data/html/vendor/guacamole-common.js" in names
    assert "guacbridge/_data/sql/sqlite.sql" in names
    assert "guacbridge/schemas/job-v1.json" in names
    assert [n for n in names if n.startswith("guacbridge/_framescan.")]   # built: gcc is here
    assert not [n for n in names if "node_modules" in n or n.endswith("package.json")]

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   timeout=300)
    port = free_port()
    version = subprocess.run([str(env_dir / "bin" / "guacbridge"), "--version"],
                             capture_output=True, text=True, timeout=60).stdout
    assert version.startswith("guacbridge ")
    scan = subprocess.run([str(python), "-c", "from guacbridge import protocol;"
                           " print(protocol._scan_in_c is not None)"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60).stdout
    assert scan.strip() == "True"                      # the installed relay runs on C
    server = subprocess.Popen([str(env_dir / "bin" / "guacbridge"), "serve", "--listen",
                               f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")],
                              cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
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
