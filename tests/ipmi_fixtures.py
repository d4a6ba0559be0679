"""A real BMC for the power tests: OpenIPMI's ``ipmi_sim`` (Debian ``openipmi``), speaking
IPMI 2.0 over LAN (RMCP+) on a free UDP port of 127.0.0.1, with a user and password of its
own. Its chassis control is a small script that keeps the power state in a file and writes
each command ipmi_sim runs it with (``set power 0``, ``set reset 1``...) to ``actions.log``:
the tests read there what reached the "server". With ``sol_shell`` its Serial-over-LAN is
wired (``sol "telnet:…"``) to a local shell that socat serves on a pty: the server's serial
port, where a typed command runs. Started and stopped by pid."""
from __future__ import annotations

import dataclasses
import pathlib
import secrets
import socket
import subprocess
import time

import pytest

import leaks
from parts import require, stop_process

CHASSIS = """#!/bin/sh
# ipmi_sim runs this as: chassis.sh 0x20 get power | chassis.sh 0x20 set <what> <value>
echo "$*" >> {dir}/actions.log
case "$2 $3" in
  "get power") echo "power:$(cat {dir}/power)" ;;
  "set power") echo "$4" > {dir}/power ;;
esac
"""


@dataclasses.dataclass
class Bmc:
    port: int
    username: str
    password: str
    workdir: pathlib.Path
    process: subprocess.Popen

    def actions(self) -> list[str]:
        """The chassis commands so far, reads of the power state left out."""
        log = self.workdir / "actions.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split(" ", 1)[1] for line in lines if " get " not in f" {line} "]

    def set_power(self, on: bool) -> None:
        (self.workdir / "power").write_text("1\n" if on else "0\n")

    shell: subprocess.Popen | None = None      # the serial port's shell (socat), if wired

    def forget(self) -> None:
        (self.workdir / "actions.log").unlink(missing_ok=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The serial port's shell. ipmi_sim opens its SOL's far end as a telnet client, and its
# option requests arrive as the shell's first input: read and dropped (a second of quiet
# after them) before the shell starts, so the first typed line is the user's own.
SHELL = """#!/bin/sh
stty -icanon -echo min 0 time 10
cat > /dev/null
stty sane
PS1='sol$ ' exec /bin/sh -i
"""


def start_sol_shell(workdir: pathlib.Path) -> tuple[int, subprocess.Popen]:
    """socat serving a shell on a pty at a free TCP port of 127.0.0.1, one per connection."""
    require("socat", "socat")
    script = workdir / "sol-shell.sh"
    script.write_text(SHELL)
    script.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shell = subprocess.Popen(
        ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
         f"EXEC:{script},pty,stderr,setsid,sigint,sane,ctty"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return port, shell
        except OSError:
            if shell.poll() is not None or time.monotonic() > deadline:
                stop_process(shell)
                raise RuntimeError("socat (the SOL's shell) did not start") from None
            time.sleep(0.05)


def start_bmc(workdir: pathlib.Path, sol_shell: bool = False) -> Bmc:
    require("ipmi_sim", "openipmi")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "state").mkdir(exist_ok=True)
    password = secrets.token_hex(8)        # IPMI 2.0 passwords: up to 20 bytes
    leaks.remember(password)
    port = free_udp_port()
    shell_port, shell = start_sol_shell(workdir) if sol_shell else (None, None)
    sol = f'sol "telnet:127.0.0.1:{shell_port}" 115200\n' if shell_port else ""
    chassis = workdir / "chassis.sh"
    chassis.write_text(CHASSIS.format(dir=workdir))
    chassis.chmod(0o755)
    (workdir / "power").write_text("1\n")
    auths = "none md2 md5 straight"
    (workdir / "lan.conf").write_text(
        'name "gbtest"\nset_working_mc 0x20\nstartlan 1\n'
        f"  addr 127.0.0.1 {port}\n  priv_limit admin\n"
        + "".join(f"  allowed_auths_{who} {auths}\n"
                  for who in ("callback", "user", "operator", "admin"))
        + f"  guid {secrets.token_hex(16)}\nendlan\n"
        f'chassis_control "{chassis} 0x20"\n' + sol +
        f'user 2 true "admin" "{password}" admin 10 {auths}\n')
    (workdir / "sim.emu").write_text(
        "mc_setbmc 0x20\n"
        "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
        "sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n")
    with (workdir / "ipmi_sim.log").open("wb") as log:
        process = subprocess.Popen(
            ["ipmi_sim", "-c", str(workdir / "lan.conf"), "-f", str(workdir / "sim.emu"),
             "-s", str(workdir / "state"), "-n"], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    bmc = Bmc(port, "admin", password, workdir, process, shell)
    # Up when it answers an RMCP presence ping (ASF, RMCP's own "are you there").
    ping = bytes.fromhex("0600ff06" "000011be" "80000000")
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_bmc(bmc)
                raise RuntimeError("ipmi_sim did not start:\n"
                                   + (workdir / "ipmi_sim.log").read_text()[-2000:])
            s.sendto(ping, ("127.0.0.1", port))
            try:
                s.recvfrom(512)
                return bmc
            except OSError:
                continue


def stop_bmc(bmc: Bmc) -> None:
    stop_process(bmc.process)
    if bmc.shell is not None:
        stop_process(bmc.shell)


@pytest.fixture(scope="module")
def bmc_sim(tmp_path_factory):
    bmc = start_bmc(tmp_path_factory.mktemp("bmc"))
    yield bmc
    stop_bmc(bmc)


@pytest.fixture(scope="module")
def bmc_sol(tmp_path_factory):
    """A BMC whose Serial-over-LAN is a local shell's pty (prompt ``sol$``)."""
    bmc = start_bmc(tmp_path_factory.mktemp("bmc-sol"), sol_shell=True)
    yield bmc
    stop_bmc(bmc)
