"""The BMC agent: the console a server's baseboard management controller exposes.

A vendor preset says how (protocol, port, fixed guacd parameters); an inventory says where
and with which credentials: ``[agents.bmc.servers.<name>]`` in the config, a TOML file named
by ``[agents.bmc] inventory``, or the fields of the request itself. Presets can be changed or
added under ``[agents.bmc.presets.<vendor>]``.
"""
from __future__ import annotations

import pathlib
import tomllib
from collections.abc import Mapping
from typing import Any

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
}
_SERVER_FIELDS = {"vendor", "address", "port", "username", "password", "password_file"}


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

    async def resolve(self, target: Mapping[str, Any]) -> Resolved:
        given = {k: v for k, v in target.items() if k != "agent"}
        name = given.pop("server", None)
        if name is not None:
            if given:
                raise AgentError(400, "target: give either server (from the inventory) or"
                                      " vendor, address and credentials, not both")
            server = self.servers.get(name) if isinstance(name, str) else None
            if server is None:
                raise AgentError(404, f"no server {name!r} in the BMC inventory")
            given = dict(server)
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
