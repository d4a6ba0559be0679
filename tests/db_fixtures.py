"""MariaDB as a real part: one server per test session on loopback, in a temp datadir,
stopped by pid; restartable, for the tests that a database restart must not break."""
from __future__ import annotations

import os
import pathlib
import secrets
import signal
import subprocess
import time

import pymysql
import pytest

import leaks
from guacbridge.demo import free_port
from guacbridge.keyring import KeyRing, new_key, parse_key
from parts import require

# The key ring that MySQL grant stores in tests seal connection secrets with.
TEST_KEY = new_key("test")
TEST_KEYS = KeyRing([parse_key(TEST_KEY)], "tests")


class MariaDB:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.socket = workdir / "mysqld.sock"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.password = secrets.token_hex(8)
        leaks.remember(self.password)
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root",
                        f"--datadir={self.datadir}", "--auth-root-authentication-method=socket",
                        "--skip-test-db"], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        log = (self.workdir / "mariadb.log").open("ab")
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
             "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.socket}",
             f"--pid-file={self.workdir / 'mysqld.pid'}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=64M", f"--log-error={self.workdir / 'error.log'}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={self.socket}",
                              "-uroot", "ping"], capture_output=True).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.workdir / "error.log").read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def root(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=str(self.socket), user="root", database=database,
                               autocommit=True)

    def create_database(self, name: str) -> str:
        """A fresh database and a TCP user for it; returns its mysql:// URL."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute("CREATE USER IF NOT EXISTS 'gb'@'127.0.0.1' IDENTIFIED BY %s",
                        (self.password,))
            cur.execute(f"GRANT ALL ON `{name}`.* TO 'gb'@'127.0.0.1'")
        return f"mysql://gb:{self.password}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    require("mariadbd", "mariadb-server")
    db = MariaDB(tmp_path_factory.mktemp("mariadb"))
    db.start()
    yield db
    db.stop()
