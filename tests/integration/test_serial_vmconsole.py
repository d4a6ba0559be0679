"""oVirt's serial console as a line source, on real parts: a real sshd stands in for the
engine's vmconsole proxy (public keys only, a forced command that checks the VM id it is
asked for and runs a shell in place of the VM's serial port), and the oVirt agent answers a
serial console through the real SDK against the engine emulator."""
from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
import uuid

import pytest
from ovirt_emulator import Engine

from guacbridge import config, serial
from guacbridge.agents import AgentError
from guacbridge.agents.ovirt import OvirtAgent
from guacbridge.serial import SerialError


def settings(proxy, **over):
    return config.Settings(**{"vmconsole_key_file": proxy["key"],
                              "vmconsole_known_hosts": proxy["known_hosts"],
                              "vmconsole_user": proxy["user"], **over})


def line_to(proxy, vm, **params):
    return {"line": "ovirt-vmconsole", "hostname": proxy["host"], "port": str(proxy["port"]),
            "vm": vm, **params}


def a_vm(proxy, state="up"):
    vm = str(uuid.uuid4())
    with proxy["vms"].open("a") as f:
        f.write(f"{vm} {state}\n")
    return vm


async def read_until(line, wanted: bytes, timeout=10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        chunk = await asyncio.wait_for(line.read(), max(0.1, deadline - time.monotonic()))
        assert chunk, f"the line ended ({line.reason}) before {wanted!r}; got {seen!r}"
        seen += chunk
    return seen


async def refused(params, s) -> SerialError:
    with pytest.raises(SerialError) as caught:
        await serial.open_line(params, s)
    return caught.value


def test_typed_bytes_reach_the_vms_console_and_its_output_comes_back(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy)

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm), settings(vmconsole_proxy))
        try:
            out = await read_until(line, b"vm$ ")
            await line.write(b"echo vm-$((6*7)) on $(tty)\n")
            out += await read_until(line, b"vm-42 on /dev/pts/")
            await line.write(b"exit\n")
            while await line.read():
                pass
            return out, line.reason
        finally:
            await line.close()
    out, reason = asyncio.run(session())
    assert b"serial console of VM " + vm.encode() in out       # the VM asked for, by id
    assert reason == f"the VM's serial console at 127.0.0.1:{vmconsole_proxy['port']} ended"
    assert vmconsole_proxy["log"].read_text().splitlines()[-1] == f"connect --vm-id={vm}"


def test_opening_a_line_logs_one_line_that_says_which_vm_and_where(vmconsole_proxy, caplog):
    vm = a_vm(vmconsole_proxy)
    caplog.set_level(logging.INFO)

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm), settings(vmconsole_proxy))
        await read_until(line, b"vm$ ")
        await line.close()
    asyncio.run(session())
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [f"serial console of VM {vm} opened through the vmconsole proxy at"
                    f" 127.0.0.1:{vmconsole_proxy['port']}"]      # not asyncssh's eight


def test_closing_the_line_ends_a_pending_read(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy)

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm), settings(vmconsole_proxy))
        await read_until(line, b"vm$ ")
        pending = asyncio.ensure_future(line.read())
        await asyncio.sleep(0.2)
        await line.close()
        await line.close()                                        # idempotent
        return await asyncio.wait_for(pending, 5), line.reason
    assert asyncio.run(session()) == (b"", "the serial console was closed")


def test_a_key_the_proxy_does_not_know_is_refused_in_words_and_never_shown(
        vmconsole_proxy, tmp_path, caplog):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    caplog.set_level(logging.DEBUG)
    error = asyncio.run(refused(line_to(vmconsole_proxy, a_vm(vmconsole_proxy)),
                                settings(vmconsole_proxy, vmconsole_key_file=other)))
    assert error.status == 403
    assert error.details == (
        f"the vmconsole proxy at 127.0.0.1:{vmconsole_proxy['port']} refused guacbridge's key"
        f" for {vmconsole_proxy['user']}: register its public key as an engine user's serial"
        " console key")
    secret = "".join(other.read_text().splitlines()[1:-1])
    for text in (error.details, caplog.text):
        assert secret[:40] not in text and "PRIVATE KEY" not in text


def test_a_vm_the_proxy_does_not_offer_is_a_404_in_the_proxys_words(vmconsole_proxy):
    unknown = str(uuid.uuid4())
    error = asyncio.run(refused(line_to(vmconsole_proxy, unknown), settings(vmconsole_proxy)))
    assert error.status == 404
    said = f"VM with id '{unknown}' is unavailable"
    assert f"offers no VM {unknown} to guacbridge's key ({said})" in error.details
    assert vmconsole_proxy["log"].read_text().splitlines()[-1] == f"connect --vm-id={unknown}"


def test_a_busy_console_is_a_409(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy, "busy")
    error = asyncio.run(refused(line_to(vmconsole_proxy, vm), settings(vmconsole_proxy)))
    assert error.status == 409
    assert error.details.startswith(f"the serial console of VM {vm} is busy")


def test_a_refusal_after_the_line_opened_ends_it_with_the_proxys_words(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy, "slow")

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm), settings(vmconsole_proxy))
        try:
            while await asyncio.wait_for(line.read(), 10):
                pass
            return line.reason
        finally:
            await line.close()
    assert asyncio.run(session()) == (
        f"the vmconsole proxy at 127.0.0.1:{vmconsole_proxy['port']} ended the console:"
        f" Console '{vm}' is not available")


def test_a_proxy_whose_host_key_is_not_vouched_for_is_never_logged_in_to(vmconsole_proxy,
                                                                         tmp_path):
    vm = a_vm(vmconsole_proxy)
    before = vmconsole_proxy["log"].read_text() if vmconsole_proxy["log"].exists() else ""
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{vmconsole_proxy['port']} "
                     + " ".join(stranger.with_suffix(".pub").read_text().split()[:2]) + "\n")
    error = asyncio.run(refused(line_to(vmconsole_proxy, vm),
                                settings(vmconsole_proxy, vmconsole_known_hosts=known)))
    assert error.status == 502
    assert f"showed a host key that {known} does not vouch for" in error.details
    after = vmconsole_proxy["log"].read_text() if vmconsole_proxy["log"].exists() else ""
    assert after == before                              # no session was ever opened
    # Without a known-hosts file nothing connects at all.
    error = asyncio.run(refused(line_to(vmconsole_proxy, vm),
                                settings(vmconsole_proxy, vmconsole_known_hosts=None)))
    assert error.status == 503 and "vmconsole.known_hosts is not set" in error.details


def test_a_proxy_whose_host_key_a_trusted_ca_certified_is_accepted(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy)
    s = settings(vmconsole_proxy, vmconsole_known_hosts=vmconsole_proxy["ca_known_hosts"])

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm), s)
        try:
            return await read_until(line, b"vm$ ")
        finally:
            await line.close()
    assert f"serial console of VM {vm}".encode() in asyncio.run(session())


def test_a_proxy_that_refuses_or_never_answers_is_502_or_504(vmconsole_proxy):
    vm = a_vm(vmconsole_proxy)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]              # bound, not listening: refused
    silent = socket.create_server(("127.0.0.1", 0))    # accepts, never says a word
    try:
        error = asyncio.run(refused(line_to(vmconsole_proxy, vm, port=str(closed_port)),
                                    settings(vmconsole_proxy)))
        assert error.status == 502 and "refused the connection" in error.details
        started = time.monotonic()
        error = asyncio.run(refused(
            line_to(vmconsole_proxy, vm, port=str(silent.getsockname()[1])),
            settings(vmconsole_proxy, vmconsole_timeout=1)))
        assert error.status == 504 and "did not answer in time" in error.details
        assert time.monotonic() - started < 5
    finally:
        closed.close()
        silent.close()


def test_an_engines_own_key_is_used_only_for_that_engines_proxy(vmconsole_proxy, tmp_path):
    vm = a_vm(vmconsole_proxy)
    engine = {"url": "https://engine.ams1.example/ovirt-engine/api",
              "vmconsole_host": vmconsole_proxy["host"],
              "vmconsole_port": vmconsole_proxy["port"],
              "vmconsole_key_file": str(vmconsole_proxy["key"])}
    s = settings(vmconsole_proxy, vmconsole_key_file=tmp_path / "absent",
                 agents={"ovirt": {"ams1": engine}})

    async def session():
        line = await serial.open_line(line_to(vmconsole_proxy, vm, location="ams1"), s)
        try:
            return await read_until(line, b"vm$ ")
        finally:
            await line.close()
    assert f"serial console of VM {vm}".encode() in asyncio.run(session())
    error = asyncio.run(refused(line_to(vmconsole_proxy, vm, location="ams1", port="2222"), s))
    assert error.status == 400 and "has its vmconsole proxy at" in error.details
    error = asyncio.run(refused(line_to(vmconsole_proxy, vm), s))    # the global key: absent
    assert error.status == 503 and "cannot read the vmconsole key" in error.details


# -- the oVirt agent's serial console ---------------------------------------------------

@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.stop()


def ovirt(engine, vmconsole_proxy):
    return config.load(env={}, agents={"ovirt": {"ams1": {
        "url": engine.url, "username": "admin@internal", "password": "secret",
        "vmconsole_host": vmconsole_proxy["host"], "vmconsole_port": vmconsole_proxy["port"],
    }}}, vmconsole_key_file=str(vmconsole_proxy["key"]),
        vmconsole_known_hosts=str(vmconsole_proxy["known_hosts"]),
        vmconsole_user=vmconsole_proxy["user"])


def test_the_ovirt_agent_answers_a_serial_console_that_opens_the_vm_by_id(engine,
                                                                         vmconsole_proxy):
    vm = engine.add_vm("web-12", serial=True)
    with vmconsole_proxy["vms"].open("a") as f:
        f.write(f"{vm['id']} up\n")
    s = ovirt(engine, vmconsole_proxy)
    resolved = asyncio.run(OvirtAgent(s).resolve(
        {"agent": "ovirt", "location": "ams1", "vm": "web-12", "console": "serial"}))
    assert resolved.target.protocol == "serial"
    assert resolved.target.params == {
        "line": "ovirt-vmconsole", "hostname": "127.0.0.1", "port": str(vmconsole_proxy["port"]),
        "vm": vm["id"], "location": "ams1"}
    assert not any("ticket" in r["path"] for r in engine.requests)   # no VNC ticket asked

    async def session():
        line = await serial.open_line(resolved.target.params, s)
        try:
            return await read_until(line, b"vm$ ")
        finally:
            await line.close()
    assert f"serial console of VM {vm['id']}".encode() in asyncio.run(session())


def test_the_ovirt_agent_refuses_a_serial_console_the_vm_cannot_give(engine, vmconsole_proxy):
    engine.add_vm("web-13")                                  # no VirtIO serial console
    engine.add_vm("web-14", status="down", serial=True)
    agent = OvirtAgent(ovirt(engine, vmconsole_proxy))

    def resolve(**target):
        with pytest.raises(AgentError) as caught:
            asyncio.run(agent.resolve({"agent": "ovirt", "location": "ams1", **target}))
        return caught.value.status, caught.value.details
    assert resolve(vm="web-13", console="serial") == (
        409, ("VM web-13 has no serial console: enable its VirtIO serial console"
              " (Edit VM, Console) and retry"))
    assert resolve(vm="web-14", console="serial") == (
        409, "VM web-14 is not running (status down): start it and retry")
    assert resolve(vm="web-13", console="spice") == (
        400, "target.console must be one of vnc, serial")


def test_the_proxy_is_on_the_engines_host_at_port_2222_unless_configured(engine):
    engine.add_vm("web-15", serial=True)
    agent = OvirtAgent(config.load(env={}, agents={"ovirt": {"ams1": {
        "url": engine.url, "username": "admin@internal", "password": "secret"}}}))
    resolved = asyncio.run(agent.resolve({"agent": "ovirt", "location": "ams1",
                                          "vm": "web-15", "console": "serial"}))
    assert (resolved.target.params["hostname"], resolved.target.params["port"]) == \
        ("127.0.0.1", "2222")          # the emulator's API is at http://127.0.0.1:PORT/…
