"""A real BMC for the power tests: OpenIPMI's ``ipmi_sim`` (Debian ``openipmi``), speaking
IPMI 2.0 over LAN (RMCP+) on a free UDP port of 127.0.0.1, with a user and password of its
own. Its chassis control is a small script that keeps the power state in a file and writes
each command ipmi_sim runs it with (``set power 0``, ``set reset 1``...) to ``actions.log``:
the tests read there what reached the "server". Started and stopped by pid."""
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

    def forget(self) -> None:
        (self.workdir / "actions.log").unlink(missing_ok=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_bmc(workdir: pathlib.Path) -> Bmc:
    require("ipmi_sim", "openipmi")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "state").mkdir(exist_ok=True)
    password = secrets.token_hex(8)        # IPMI 2.0 passwords: up to 20 bytes
    leaks.remember(password)
    port = free_udp_port()
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
        f'chassis_control "{chassis} 0x20"\n'
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
    bmc = Bmc(port, "admin", password, workdir, process)
    # Up when it answers an RMCP presence ping (ASF, RMCP's own "are you there").
    ping = bytes.fromhex("0600ff06" "000011be" "80000000")
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise RuntimeError("ipmi_sim did not start:\n"
                                   + (workdir / "ipmi_sim.log").read_text()[-2000:])
            s.sendto(ping, ("127.0.0.1", port))
            try:
                s.recvfrom(512)
                return bmc
            except OSError:
                continue


@pytest.fixture(scope="module")
def bmc_sim(tmp_path_factory):
    bmc = start_bmc(tmp_path_factory.mktemp("bmc"))
    yield bmc
    stop_process(bmc.process)
