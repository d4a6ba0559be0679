"""The oVirt agent: a VM's VNC console and a short-lived ticket, through the engine's API.

One ovirt-engine-sdk-python connection per engine (``[agents.ovirt.<location>]``), made on
first use and reused; the SDK is blocking and not thread-safe, so each engine's calls run in
the agents' worker threads (``run_blocking``), one at a time per engine; a call that finds
its engine still busy past the SDK's timeout gives up (504) instead of holding a thread.
The ticket we ask for lives ``ticket_seconds`` (120 by default; the engine's own default is
two hours), and a VM can migrate to another host: the agent *follows*, so every new guacd
connection of its consoles asks it again (a fresh ticket, the VM's current host) and the
console's link is not bound to the creation-time ticket's life (``targets.py``).
Errors name the VM and the way out, never a credential. Power goes through the same
connection and lock: the VM service's start, shutdown, stop, reboot and reset.

A target with ``"console": "serial"`` asks for the VM's serial console instead: the answer
is a serial target (``line`` ``ovirt-vmconsole``, serial_vmconsole.py) whose hostname and
port are the engine's vmconsole proxy, so the target policy judges where guacbridge's SSH
session goes; the VM must be running with its VirtIO serial console enabled.
"""
from __future__ import annotations

import pathlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

from ..config import ConfigError, Settings
from ..grants import Target
from ..serial_vmconsole import KIND as VMCONSOLE
from ..serial_vmconsole import engine_host
from . import AgentError, Resolved, run_blocking

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Our power actions as the SDK's VM service calls them (POST …/vms/{id}/<call>).
_VM_CALLS = {"on": "start", "shutdown": "shutdown", "off": "stop", "reboot": "reboot",
             "reset": "reset"}
_OFF = {types.VmStatus.DOWN}
_ON = {types.VmStatus.UP, types.VmStatus.POWERING_UP, types.VmStatus.POWERING_DOWN,
       types.VmStatus.REBOOT_IN_PROGRESS, types.VmStatus.PAUSED, types.VmStatus.MIGRATING,
       types.VmStatus.WAIT_FOR_LAUNCH}
R = TypeVar("R")
CONSOLES = ("vnc", "serial")         # what a target's "console" may ask for
_TICKETABLE = {types.VmStatus.UP, types.VmStatus.PAUSED, types.VmStatus.POWERING_UP,
               types.VmStatus.POWERING_DOWN, types.VmStatus.REBOOT_IN_PROGRESS}


class Engine:
    def __init__(self, location: str, conf: Mapping[str, Any]) -> None:
        self.location = location
        self.url = str(conf.get("url") or "")
        if not self.url:
            raise ConfigError(f"agents.ovirt.{location}: url is required")
        self.username = conf.get("username")
        self.password = conf.get("password")
        if conf.get("password_file"):
            self.password = pathlib.Path(conf["password_file"]).read_text().strip()
        self.token = conf.get("token")
        if not self.token and not (self.username and self.password):
            raise ConfigError(f"agents.ovirt.{location}: give username and password"
                              " (or password_file), or token")
        self.ca_file = conf.get("ca_file")
        self.insecure = bool(conf.get("insecure", False))
        self.ticket_seconds = int(conf.get("ticket_seconds", 120))
        self.timeout = int(conf.get("timeout", 30))
        try:
            self.vmconsole = engine_host(conf)       # its serial consoles' SSH proxy
        except (TypeError, ValueError):
            raise ConfigError(f"agents.ovirt.{location}: vmconsole_port must be a port"
                              " number") from None
        self._lock = threading.Lock()
        self._connection: sdk.Connection | None = None

    def _conn(self) -> sdk.Connection:
        if self._connection is None:
            self._connection = sdk.Connection(
                url=self.url, username=self.username, password=self.password,
                token=self.token, ca_file=self.ca_file, insecure=self.insecure,
                timeout=self.timeout)
        return self._connection

    def console(self, vm_ref: str) -> Resolved:
        return self._locked(vm_ref, self._console)

    def serial_console(self, vm_ref: str) -> Resolved:
        return self._locked(vm_ref, self._serial)

    def power_state(self, vm_ref: str) -> str:
        """on, off or unknown, from the VM's status."""
        return self._locked(vm_ref, lambda ref: _power_state(self._vm(ref).status))

    def power(self, vm_ref: str, action: str) -> None:
        """The VM service's start, shutdown (ACPI), stop, reboot or reset."""
        def press(ref: str) -> None:
            vm = self._vm(ref)
            try:
                getattr(self._conn().system_service().vms_service().vm_service(vm.id),
                        _VM_CALLS[action])()
            except sdk.Error as e:
                if e.code == 409:    # the VM's state forbids it (start on a running VM)
                    status = vm.status.value if vm.status else "unknown"
                    raise AgentError(409, f"the engine refused {action} for VM {vm.name}"
                                          f" (status {status})") from e
                raise
        self._locked(vm_ref, press)

    def _locked(self, vm_ref: str, work: Callable[[str], R]) -> R:
        if not self._lock.acquire(timeout=self.timeout):
            raise AgentError(504, f"the oVirt engine for {self.location} is still busy with"
                                  " an earlier request that has not answered")
        try:
            return self._mapped(vm_ref, work)
        finally:
            self._lock.release()

    def _mapped(self, vm_ref: str, work: Callable[[str], R]) -> R:
        try:
            return work(vm_ref)
        except AgentError:
            raise
        except sdk.AuthError as e:
            self._drop()
            raise AgentError(502, f"the oVirt engine for {self.location} refused"
                                  " guacbridge's login: check the agent's credentials") from e
        except sdk.ConnectionError as e:
            self._drop()
            raise AgentError(502, f"the oVirt engine for {self.location} is unreachable") from e
        except sdk.TimeoutError as e:
            raise AgentError(504, f"the oVirt engine for {self.location} did not answer"
                                  " in time") from e
        except sdk.NotFoundError as e:
            raise AgentError(404, f"no VM {vm_ref!r} in {self.location}") from e
        except sdk.Error as e:
            if e.code == 409:
                raise AgentError(409, f"VM {vm_ref} is not running: start it and retry") from e
            raise AgentError(502, f"the oVirt engine for {self.location} failed"
                                  f" (HTTP {e.code or '?'})") from e

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close(logout=False)
            except Exception:
                pass
            self._connection = None

    def _vm(self, vm_ref: str) -> types.Vm:
        vms = self._conn().system_service().vms_service()
        if _UUID.match(vm_ref):
            return vms.vm_service(vm_ref).get()
        found = vms.list(search=f"name={vm_ref}")
        if not found:
            raise AgentError(404, f"no VM named {vm_ref!r} in {self.location}")
        return found[0]

    def _console(self, vm_ref: str) -> Resolved:
        vms = self._conn().system_service().vms_service()
        vm = self._vm(vm_ref)
        if vm.status not in _TICKETABLE:
            status = vm.status.value if vm.status else "unknown"
            raise AgentError(409, f"VM {vm.name} is not running (status {status}):"
                                  " start it and retry")
        consoles = vms.vm_service(vm.id).graphics_consoles_service()
        vnc = next((c for c in consoles.list(current=True)
                    if c.protocol == types.GraphicsType.VNC), None)
        if vnc is None:
            raise AgentError(409, f"VM {vm.name} has no VNC console: give it a VNC display")
        address = vnc.address
        if not address or address == "0":      # the engine's fallback: the host's address
            if vm.host is None:
                raise AgentError(502, f"VM {vm.name}'s console has no address")
            address = self._conn().system_service().hosts_service() \
                .host_service(vm.host.id).get().address
        ticket = consoles.console_service(vnc.id).ticket(
            ticket=types.Ticket(expiry=self.ticket_seconds))
        return Resolved(Target("vnc", {"hostname": address, "port": str(vnc.port),
                                       "password": ticket.value}),
                        expires_at=time.time() + self.ticket_seconds)


    def _serial(self, vm_ref: str) -> Resolved:
        vm = self._vm(vm_ref)
        if vm.status not in _TICKETABLE:
            status = vm.status.value if vm.status else "unknown"
            raise AgentError(409, f"VM {vm.name} is not running (status {status}):"
                                  " start it and retry")
        if vm.console is None or not vm.console.enabled:
            raise AgentError(409, f"VM {vm.name} has no serial console: enable its VirtIO"
                                  " serial console (Edit VM, Console) and retry")
        host, port = self.vmconsole
        if not host:
            raise AgentError(502, f"no vmconsole proxy for {self.location}: set its"
                                  " vmconsole_host")
        return Resolved(Target("serial", {"line": VMCONSOLE, "hostname": host,
                                          "port": str(port), "vm": str(vm.id),
                                          "location": self.location}))


def _power_state(status: types.VmStatus | None) -> str:
    return "off" if status in _OFF else "on" if status in _ON else "unknown"


class OvirtAgent:
    name = "ovirt"
    follows = True       # tickets expire and VMs migrate: asked again at each connect

    def __init__(self, settings: Settings) -> None:
        engines = settings.agents.get("ovirt", {})
        self.engines = {loc: Engine(loc, conf) for loc, conf in engines.items()}

    async def resolve(self, target: Mapping[str, Any]) -> Resolved:
        engine, vm = self._where(target)
        console = target.get("console", "vnc")
        if console not in CONSOLES:
            raise AgentError(400, f"target.console must be one of {', '.join(CONSOLES)}")
        return await run_blocking(engine.serial_console if console == "serial"
                                  else engine.console, vm)

    def power_actions(self, target: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(_VM_CALLS)

    async def state(self, target: Mapping[str, Any]) -> str:
        engine, vm = self._where(target)
        return await run_blocking(engine.power_state, vm)

    async def power(self, target: Mapping[str, Any], action: str) -> None:
        if action not in _VM_CALLS:
            raise AgentError(400, f"oVirt VMs offer {', '.join(_VM_CALLS)}, not {action!r}")
        engine, vm = self._where(target)
        await run_blocking(engine.power, vm, action)

    def _where(self, target: Mapping[str, Any]) -> tuple[Engine, str]:
        unknown = sorted(set(target) - {"agent", "location", "vm", "console"})
        if unknown:
            raise AgentError(400, f"target: unknown field(s) for ovirt: {', '.join(unknown)}")
        location, vm = target.get("location"), target.get("vm")
        if not isinstance(vm, str) or not vm:
            raise AgentError(400, "target.vm is required: the VM's id or name")
        engine = self.engines.get(location) if isinstance(location, str) else None
        if engine is None:
            raise AgentError(400, f"unknown oVirt location {location!r}; configured: "
                                  f"{', '.join(sorted(self.engines)) or 'none'}")
        return engine, vm
