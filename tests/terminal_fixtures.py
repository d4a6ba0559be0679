"""SSH and telnet servers as real parts, and a throw-away local user to log in as."""
from __future__ import annotations

import os
import pathlib
import pwd
import secrets
import subprocess

import pytest

from guacbridge import demo
from parts import require, unavailable


@pytest.fixture(scope="session")
def console_user():
    """A local account with a random password, removed after the session."""
    require("useradd", "passwd")
    if os.geteuid() != 0:
        unavailable("creating a login for the SSH and telnet tests needs root")
    name = f"gbt{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    home = pathlib.Path(pwd.getpwnam(name).pw_dir)
    yield {"name": name, "password": password, "home": home}
    subprocess.run(["userdel", "-r", name], capture_output=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    require("sshd", "openssh-server")
    workdir = tmp_path_factory.mktemp("sshd")
    key = workdir / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = demo.free_port()
    config = workdir / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {key}\n"
                      "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
                      "UsePAM yes\nPermitRootLogin no\nPidFile none\n"
                      "PubkeyAcceptedAlgorithms +ssh-rsa\n"
                      f"AuthorizedKeysFile .ssh/authorized_keys\n")
    pathlib.Path("/run/sshd").mkdir(exist_ok=True)
    part = demo._spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], workdir)
    demo.wait_for_port("127.0.0.1", port, 10, part)
    yield {"host": "127.0.0.1", "port": port, "host_key": (key.with_suffix(".pub")).read_text()}
    part.stop()


@pytest.fixture(scope="session")
def telnetd(tmp_path_factory):
    require("socat", "socat")
    require("telnetd", "inetutils-telnetd")
    workdir = tmp_path_factory.mktemp("telnetd")
    port = demo.free_port()
    part = demo._spawn("telnetd", ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                                   "EXEC:/usr/sbin/telnetd -h,nofork"], workdir)
    demo.wait_for_port("127.0.0.1", port, 10, part)
    yield {"host": "127.0.0.1", "port": port}
    part.stop()
