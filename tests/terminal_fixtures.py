"""SSH and telnet servers as real parts, and a throw-away local user to log in as."""
from __future__ import annotations

import os
import pathlib
import pwd
import re
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


STARTWM = """#!/bin/sh
# The RDP test session: a window manager and one xterm at the top left.
twm &
exec xterm -geometry 100x30+0+0 -title guacbridge-rdp
"""


@pytest.fixture(scope="session")
def xrdp(tmp_path_factory, console_user):
    """xrdp and its session manager, on loopback; sessions run twm and an xterm."""
    require("xrdp", "xrdp")
    require("xrdp-sesman", "xrdp")
    if not pathlib.Path("/usr/lib/xorg/Xorg").exists():
        unavailable("Xorg for xrdp sessions is not installed (Debian package xorgxrdp)")
    workdir = tmp_path_factory.mktemp("xrdp")
    startwm = workdir / "startwm.sh"
    startwm.write_text(STARTWM)
    startwm.chmod(0o755)
    port = demo.free_port()
    xrdp_ini = pathlib.Path("/etc/xrdp/xrdp.ini").read_text()
    xrdp_ini = re.sub(r"(?m)^port=3389$", f"port=tcp://127.0.0.1:{port}", xrdp_ini)
    xrdp_ini = xrdp_ini.replace("LogFile=xrdp.log", f"LogFile={workdir / 'xrdp.log'}")
    xrdp_ini = xrdp_ini.replace("EnableSyslog=true", "EnableSyslog=false")
    (workdir / "xrdp.ini").write_text(xrdp_ini)
    # xrdp finds the session manager through /etc/xrdp/sesman.ini, so sesman keeps its
    # address (127.0.0.1:3350); only what it starts and where it logs change.
    sesman_ini = pathlib.Path("/etc/xrdp/sesman.ini").read_text()
    sesman_ini = sesman_ini.replace("DefaultWindowManager=startwm.sh",
                                    f"DefaultWindowManager={startwm}")
    sesman_ini = sesman_ini.replace("UserWindowManager=startwm.sh",
                                    "UserWindowManager=/nonexistent")
    sesman_ini = sesman_ini.replace("LogFile=xrdp-sesman.log",
                                    f"LogFile={workdir / 'sesman.log'}")
    sesman_ini = sesman_ini.replace("EnableSyslog=true", "EnableSyslog=false")
    (workdir / "sesman.ini").write_text(sesman_ini)
    pathlib.Path("/var/run/xrdp").mkdir(parents=True, exist_ok=True)
    sesman = demo._spawn("sesman", ["xrdp-sesman", "-n", "-c", str(workdir / "sesman.ini")],
                         workdir)
    _wait_for_sesman(sesman)
    server = demo._spawn("xrdp", ["xrdp", "-n", "-c", str(workdir / "xrdp.ini")], workdir)
    demo.wait_for_port("127.0.0.1", port, 10, server)
    yield {"host": "127.0.0.1", "port": port}
    server.stop()
    sesman.stop()
    # Sessions outlive their connections: end the test user's processes.
    subprocess.run(["pkill", "-KILL", "-u", console_user["name"]], capture_output=True)


def _wait_for_sesman(part: demo.Part) -> None:
    """sesman binds 127.0.0.1 or, on some systems, only [::1]."""
    import socket
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for host in ("127.0.0.1", "::1"):
            try:
                socket.create_connection((host, 3350), 0.5).close()
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise demo.PartFailed(f"xrdp-sesman does not listen on port 3350:\n{part.log_tail()}")
