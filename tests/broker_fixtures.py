"""RabbitMQ as a real part: one node per test session on loopback with its own node name,
ports and temp dirs; restartable, for the tests that a broker restart must not break."""
from __future__ import annotations

import os
import pathlib
import secrets
import signal
import subprocess
import time
import uuid
from urllib.parse import quote, unquote, urlsplit

import pytest

import leaks
from guacbridge.demo import free_port, wait_for_port
from parts import require

RABBIT = "/usr/lib/rabbitmq/bin"
# The permissions docs/broker.rst tells operators to give (configure, write, read): the
# worker's own user, and a producer's: its reply queue is <user>.replies or one RabbitMQ names
# (amq.gen-…, as guacbridge submit declares).
WORKER_PERMISSIONS = (r"^guacbridge\.", r"^(guacbridge\..*|amq\.default)$", r"^guacbridge\.")


def producer_permissions(user: str, write: str = r"^guacbridge\.jobs$") -> tuple[str, str, str]:
    replies = rf"^({user}\.replies|amq\.gen-.*)$"
    return (replies, write, replies)


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

    def add_user(self, url: str, name: str, permissions: tuple[str, str, str]) -> str:
        """A RabbitMQ user with *permissions* (configure, write, read regular expressions)
        on *url*'s vhost only; the URL it logs in with. Users are the node's, not the vhost's:
        a name used by an earlier test gets a new password."""
        vhost = unquote(urlsplit(url).path[1:])
        password = secrets.token_hex(12)
        leaks.remember(password)
        if self.ctl("add_user", name, password).returncode != 0:
            assert self.ctl("change_password", name, password).returncode == 0
        done = self.ctl("set_permissions", "-p", vhost, name, *permissions)
        assert done.returncode == 0, done.stderr
        return f"amqp://{quote(name, safe='')}:{password}@127.0.0.1:{self.port}/{quote(vhost)}"


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
