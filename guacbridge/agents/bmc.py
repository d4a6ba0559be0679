"""The BMC agent: the console a server's baseboard management controller exposes.

A vendor preset says how (protocol, port, fixed guacd parameters); an inventory says where
and with which credentials: ``[agents.bmc.servers.<name>]`` in the config, a TOML file named
by ``[agents.bmc] inventory``, or the fields of the request itself. Presets can be changed or
added under ``[agents.bmc.presets.<vendor>]``.

Power: an inventory server with ``ipmi = true`` (or any ``ipmi_*`` field) can be switched on,
shut down, off, reset and power-cycled with IPMI 2.0 over LAN (RMCP+) through pyghmi, with
the inventory's BMC credentials (``ipmi_username`` / ``ipmi_password`` /
``ipmi_password_file``, by default the server's own ``username`` and password), at
``ipmi_address`` (default ``address``) port ``ipmi_port`` (default 623). Only servers in the
inventory: a request's own credentials are never kept for later power calls. The credentials
are never logged nor returned; errors name the server, not the user or password.
"""
from __future__ import annotations

import pathlib
import threading
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .. import parameters
from ..config import ConfigError, Settings
from ..grants import Target
from . import AgentError, Resolved, run_blocking

PRESETS: dict[str, dict[str, Any]] = {
    # Dell iDRAC's VNC server (iDRAC settings → VNC server), password up to 8 characters.
    "idrac": {"protocol": "vnc", "port": 5901},
    # Supermicro's BMC VNC (the HTML5 iKVM's server).
    "supermicro": {"protocol": "vnc", "port": 5900},
    # Cisco CIMC's KVM over VNC.
    "cimc": {"protocol": "vnc", "port": 5900},
    # Serial over LAN through the BMC's SSH service: iDRAC's racadm console.
    "idrac-sol": {"protocol": "ssh", "port": 22, "command": "console com2"},
    # Generic IPMI SOL reached over SSH (e.g. a Supermicro BMC's SMASH shell).
    "ipmi-ssh": {"protocol": "ssh", "port": 22},
    # IPMI 2.0 Serial-over-LAN itself (RMCP+, UDP 623), through guacbridge's serial bridge
    # (serial_ipmi.py): the server's username and password are the BMC's IPMI login.
    "ipmi-sol": {"protocol": "serial", "line": "ipmi-sol", "port": 623},
}
T = TypeVar("T")
_IPMI_FIELDS = {"ipmi", "ipmi_address", "ipmi_port", "ipmi_username", "ipmi_password",
                "ipmi_password_file"}
_SERVER_FIELDS = {"vendor", "address", "port", "username", "password",
                  "password_file"} | _IPMI_FIELDS
# Our power actions as IPMI chassis control commands: pyghmi's names, and cycle's raw code.
_IPMI_ACTIONS = {"on": "on", "shutdown": "shutdown", "off": "off", "reset": "reset",
                 "cycle": None}
_CHASSIS_CYCLE = 0x02
_IPMI_WAIT = 30         # seconds a call waits for the BMC's earlier one


class BmcAgent:
    name = "bmc"

    def __init__(self, settings: Settings) -> None:
        conf = settings.agents.get("bmc", {})
        self.presets = {**PRESETS, **{k: dict(v) for k, v in conf.get("presets", {}).items()}}
        servers = dict(conf.get("servers", {}))
        if conf.get("inventory"):
            path = pathlib.Path(conf["inventory"])
            try:
                servers.update(tomllib.loads(path.read_text()).get("servers", {}))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise ConfigError(f"agents.bmc.inventory {path}: {e}") from None
        for name, server in servers.items():
            unknown = set(server) - _SERVER_FIELDS
            if unknown or server.get("vendor") not in self.presets:
                raise ConfigError(f"agents.bmc server {name!r}: needs vendor (one of "
                                  f"{', '.join(sorted(self.presets))}) and address; unknown "
                                  f"fields: {', '.join(sorted(unknown)) or 'none'}")
        self.servers = servers
        self._sessions = _Ipmi()

    async def resolve(self, target: Mapping[str, Any]) -> Resolved:
        given = {k: v for k, v in target.items() if k != "agent"}
        name = given.pop("server", None)
        if name is not None:
            if given:
                raise AgentError(400, "target: give either server (from the inventory) or"
                                      " vendor, address and credentials, not both")
            given = {k: v for k, v in self._server(name).items() if k not in _IPMI_FIELDS}
            if "password_file" in given:
                path = pathlib.Path(given.pop("password_file"))
                given["password"] = (await run_blocking(path.read_text)).strip()
        vendor = given.pop("vendor", None)
        preset = self.presets.get(vendor) if isinstance(vendor, str) else None
        if preset is None:
            raise AgentError(400, f"target.vendor must be one of {', '.join(sorted(self.presets))}")
        address = given.pop("address", None)
        if not isinstance(address, str) or not address:
            raise AgentError(400, "target.address is required: the BMC's address")
        preset = dict(preset)
        protocol = preset.pop("protocol")
        try:
            params = parameters.validate(protocol, {**preset, **given, "hostname": address})
        except parameters.InvalidParameters as e:
            raise AgentError(400, f"target: {e}") from None
        return Resolved(Target(protocol, params))

    def _server(self, name: Any) -> dict[str, Any]:
        server = self.servers.get(name) if isinstance(name, str) else None
        if server is None:
            raise AgentError(404, f"no server {name!r} in the BMC inventory")
        return dict(server)

    # -- power, over IPMI ---------------------------------------------------------------

    def power_actions(self, target: Mapping[str, Any]) -> tuple[str, ...]:
        server = self.servers.get(target.get("server")) if isinstance(
            target.get("server"), str) else None
        if server is None or not (set(server) & _IPMI_FIELDS) or server.get("ipmi") is False:
            return ()
        return tuple(_IPMI_ACTIONS)

    async def state(self, target: Mapping[str, Any]) -> str:
        name, login = await self._ipmi(target)
        answer = await run_blocking(self._sessions.call, name, login, lambda c: c.get_power())
        return str(answer.get("powerstate", "unknown"))

    async def power(self, target: Mapping[str, Any], action: str) -> None:
        if action not in _IPMI_ACTIONS:
            raise AgentError(400, f"BMC servers offer {', '.join(_IPMI_ACTIONS)},"
                                  f" not {action!r}")
        name, login = await self._ipmi(target)
        command = _IPMI_ACTIONS[action]

        def press(c: Any) -> Any:
            if command is None:     # pyghmi has no name for a power cycle: the raw command
                return c.raw_command(netfn=0, command=2, data=[_CHASSIS_CYCLE])
            return c.set_power(command, wait=False)
        await run_blocking(self._sessions.call, name, login, press)

    async def _ipmi(self, target: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        if not self.power_actions(target):
            raise AgentError(404, "this target has no IPMI power control: an inventory server"
                                  " with ipmi = true")
        name = str(target["server"])
        server = self._server(name)
        password = server.get("ipmi_password")
        file = server.get("ipmi_password_file") or (
            None if password or "ipmi_username" in server else server.get("password_file"))
        if password is None and file:
            password = (await run_blocking(pathlib.Path(file).read_text)).strip()
        if password is None and "ipmi_username" not in server:
            password = server.get("password")
        return name, {"bmc": str(server.get("ipmi_address") or server["address"]),
                      "port": int(server.get("ipmi_port", 623)),
                      "userid": str(server.get("ipmi_username") or server.get("username")
                                    or ""),
                      "password": str(password or "")}


class _Ipmi:
    """One pyghmi session per BMC login, kept and reused: pyghmi shares a session between
    its Command objects, and a second Command made for a live session waits forever (seen
    with ipmi_sim), so each login has one Command, used by one thread at a time. A failed
    call drops it; the next call logs in afresh."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: dict[tuple[str, int, str], tuple[threading.Lock, list[Any]]] = {}

    def call(self, name: str, login: dict[str, Any], work: Callable[[Any], T]) -> T:
        from pyghmi import exceptions
        from pyghmi.ipmi import command
        key = (login["bmc"], login["port"], login["userid"])
        with self._lock:
            lock, held = self._logins.setdefault(key, (threading.Lock(), []))
        if not lock.acquire(timeout=_IPMI_WAIT):
            raise AgentError(504, f"the BMC of server {name} is still busy with an earlier"
                                  " IPMI command")
        try:
            if not held:
                held.append(command.Command(**login))
            return work(held[0])
        except exceptions.PyghmiException as e:
            held.clear()
            # pyghmi's messages are its own fixed texts ("Incorrect password provided",
            # "timeout"), never the credentials given.
            raise AgentError(502, f"the BMC of server {name} refused the IPMI command:"
                                  f" {str(e)[:200]}") from None
        except BaseException:
            held.clear()
            raise
        finally:
            lock.release()
