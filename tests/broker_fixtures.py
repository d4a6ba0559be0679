"""RabbitMQ as a real part: one node per test session on loopback with its own node name,
ports and temp dirs; restartable, for the tests that a broker restart must not break."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest

from guacbridge.demo import free_port, wait_for_port
from parts import require

RABBIT = "/usr/lib/rabbitmq/bin"


class RabbitMQ:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"gbtest-{uuid.uuid4().hex[:8]}@localhost"
        (workdir / "home").mkdir(parents=True, exist_ok=True)
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.env = {
            **os.environ, "HOME": str(workdir / "home"), "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_PID_FILE": str(workdir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([f"{RABBIT}/rabbitmqctl", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen([f"{RABBIT}/rabbitmq-server"], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_for_port("127.0.0.1", self.port, 60)
        deadline = time.monotonic() + 60
        while self.ctl("await_startup", timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("rabbitmq did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.ctl("shutdown")
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def new_vhost(self) -> str:
        """A virtual host of its own, so each test starts from an empty broker; its URL."""
        vhost = f"t{uuid.uuid4().hex[:10]}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory):
    require("epmd", "erlang-base")
    if not os.path.exists(f"{RABBIT}/rabbitmq-server"):
        from parts import unavailable
        unavailable("rabbitmq-server is not installed (Debian package rabbitmq-server)")
    broker = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"))
    broker.start()
    yield broker
    broker.stop()
    subprocess.run(["epmd", "-kill"], capture_output=True)
