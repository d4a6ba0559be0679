"""SSH and telnet servers as real parts, and a throw-away local user to log in as."""
from __future__ import annotations

import os
import pathlib
import pwd
import re
import secrets
import subprocess

import pytest

import leaks
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


# Stands in for ovirt-vmconsole-proxy-shell, the command the vmconsole proxy forces on every
# key: it reads what the client asked to run, needs a pty, opens only the VMs listed in
# ~/vms ("ID state"), refuses the way the proxy does, and for an open VM runs a shell in
# place of the VM's serial port. Every command asked for goes to ~/commands.log.
VMCONSOLE_STANDIN = r"""#!/bin/bash
echo "$SSH_ORIGINAL_COMMAND" >> "$HOME/commands.log"
set -f -- $SSH_ORIGINAL_COMMAND
vm=""
[ "$1" = connect ] && case "$2" in --vm-id=*) vm="${2#--vm-id=}";; esac
[ -n "$vm" ] || { echo "ERROR: this stand-in takes connect --vm-id=ID only" >&2; exit 1; }
[ -t 0 ] || { echo "ERROR: No pty support, please enable at client side" >&2; exit 1; }
state=$(awk -v id="$vm" '$1 == id {print $2}' "$HOME/vms")
case "$state" in
  "") echo "ERROR: VM with id '$vm' is unavailable" >&2; exit 1;;
  busy) echo "ERROR: Console '$vm' is not available" >&2; exit 1;;
  slow) sleep 3; echo "ERROR: Console '$vm' is not available" >&2; exit 1;;
esac
echo "serial console of VM $vm"
cd "$HOME" && exec env PS1='vm$ ' TERM=xterm bash --norc --noprofile -i
"""


@pytest.fixture(scope="session")
def vmconsole_proxy(tmp_path_factory):
    """A real sshd standing in for oVirt's vmconsole proxy: public keys only, for a throw-away
    user whose authorized_keys entry forces the stand-in (as the proxy's does). Yields its
    address, the user and home, guacbridge's key pair, known_hosts files vouching for the
    sshd's host key (``known_hosts``) or for the CA that certified it (``ca_known_hosts``),
    and ``vms`` (write ``ID state`` lines: up, busy, slow)."""
    require("sshd", "openssh-server")
    require("useradd", "passwd")
    if os.geteuid() != 0:
        unavailable("creating the vmconsole proxy's login needs root")
    workdir = tmp_path_factory.mktemp("vmconsole")
    host_key = workdir / "host_ed25519"
    client_key = workdir / "guacbridge_ed25519"
    ca = workdir / "ca_ed25519"                  # as the engine's vmconsole CA certifies it
    for key in (host_key, client_key, ca):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "vmconsole-proxy", "-n",
                    "127.0.0.1", str(host_key.with_suffix(".pub"))], check=True)
    leaks.remember(*client_key.read_text().splitlines()[2:-1])    # its secret part: no log
    name = f"gbv{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    # A password nobody knows: the account is usable (not locked), only keys log in.
    subprocess.run(["chpasswd"], input=f"{name}:{secrets.token_urlsafe(16)}\n", text=True,
                   check=True)
    home = pathlib.Path(pwd.getpwnam(name).pw_dir)
    standin = home / "vmconsole-standin"
    standin.write_text(VMCONSOLE_STANDIN)
    standin.chmod(0o755)
    (home / "vms").write_text("")
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(
        f'command="{standin}",no-agent-forwarding,no-port-forwarding,no-X11-forwarding '
        + client_key.with_suffix(".pub").read_text())
    subprocess.run(["chown", "-R", f"{name}:", str(home)], check=True)
    port = demo.free_port()
    config = workdir / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\n"
                      "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                      f"HostCertificate {workdir / 'host_ed25519-cert.pub'}\n"
                      "PubkeyAuthentication yes\nUsePAM yes\nPermitRootLogin no\n"
                      f"AllowUsers {name}\nPidFile none\n"
                      "AuthorizedKeysFile .ssh/authorized_keys\n")
    pathlib.Path("/run/sshd").mkdir(exist_ok=True)
    part = demo._spawn("vmconsole-sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                       workdir)
    demo.wait_for_port("127.0.0.1", port, 10, part)
    known_hosts = workdir / "known_hosts"
    host_pub = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    ca_known_hosts = workdir / "ca_known_hosts"
    ca_pub = ca.with_suffix(".pub").read_text().split()
    ca_known_hosts.write_text(f"@cert-authority [127.0.0.1]:{port} {ca_pub[0]} {ca_pub[1]}\n")
    yield {"host": "127.0.0.1", "port": port, "user": name, "home": home,
           "key": client_key, "known_hosts": known_hosts,
           "ca_known_hosts": ca_known_hosts, "vms": home / "vms",
           "log": home / "commands.log"}
    part.stop()
    subprocess.run(["userdel", "-f", "-r", name], capture_output=True)
