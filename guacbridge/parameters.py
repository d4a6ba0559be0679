"""The guacd connection parameters a console request may set, per protocol.

A whitelist, not a pass-through: guacd parameters such as ``recording-path`` or
``drive-path`` write files on the guacd host and have no place in a console request. Values
are checked here once, so that every agent and sink hands guacd clean strings.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# serial: IPMI's RMCP+ port (ipmi-sol); other line kinds name their port.
DEFAULT_PORTS = {"vnc": 5900, "rdp": 3389, "ssh": 22, "telnet": 23, "serial": 623}

_COMMON = {"hostname", "port", "read-only", "disable-copy", "disable-paste"}
_TERMINAL = {"username", "password", "color-scheme", "font-name", "font-size", "scrollback",
             "backspace", "terminal-type"}
ALLOWED: dict[str, frozenset[str]] = {
    "vnc": frozenset(_COMMON | {"password", "username", "encodings", "color-depth",
                                "swap-red-blue", "cursor", "autoretry", "clipboard-encoding",
                                "dest-host", "dest-port", "force-lossless",
                                # guacd 1.5.5+ (1.3.0 ignores parameters it does not know)
                                "quality-level", "compress-level", "disable-display-resize",
                                "disable-server-input"}),
    "rdp": frozenset(_COMMON | {"username", "password", "domain", "security", "ignore-cert",
                                "disable-auth", "server-layout", "timezone", "console",
                                "color-depth", "resize-method", "normalize-clipboard",
                                "enable-touch", "initial-program", "load-balance-info",
                                # guacd 1.6
                                "cert-fingerprints", "cert-tofu", "disable-gfx", "timeout"}),
    "ssh": frozenset(_COMMON | _TERMINAL | {"private-key", "passphrase", "host-key", "command",
                                            "locale", "timezone", "server-alive-interval",
                                            "timeout", "public-key"}),
    "telnet": frozenset(_COMMON | _TERMINAL | {"username-regex", "password-regex",
                                               "login-success-regex", "login-failure-regex",
                                               "timeout"}),
    # A serial line (serial.py) shown through guacd's telnet (serial_bridge.py): ``line``
    # names its kind, hostname/port its real far end (a BMC), username/password (or an SSH
    # key) the line's login; the terminal parameters go on to guacd.
    # vm and location: which VM's console an ovirt-vmconsole line opens, and whose key.
    "serial": frozenset(_COMMON | _TERMINAL | {"line", "private-key", "passphrase",
                                               "host-key", "vm", "location"}),
}
# guacd's RDP keymaps (server-layout); the console page offers some of them.
RDP_LAYOUTS = frozenset({
    "en-us-qwerty", "en-gb-qwerty", "de-de-qwertz", "de-ch-qwertz", "fr-fr-azerty",
    "fr-be-azerty", "fr-ca-qwerty", "fr-ch-qwertz", "es-es-qwerty", "es-latam-qwerty",
    "it-it-qwerty", "pt-br-qwerty", "pt-pt-qwerty", "sv-se-qwerty", "da-dk-qwerty",
    "no-no-qwerty", "pl-pl-qwerty", "hu-hu-qwertz", "cs-cz-qwertz", "ro-ro-qwerty",
    "tr-tr-qwerty", "ja-jp-qwerty", "failsafe"})
# guacbridge's own mark among a console's stored parameters (a request cannot name it: it is
# in no ALLOWED set, and guacd is only ever sent the parameters its ``args`` names): the
# console was asked with "prompt": false, so the tunnel answers guacd's ``required`` itself.
NO_PROMPT = "guacbridge-no-prompt"
SECRET = frozenset({"password", "passphrase", "private-key"})
_BOOLEAN = frozenset({"read-only", "disable-copy", "disable-paste", "swap-red-blue",
                      "ignore-cert", "disable-auth", "console", "normalize-clipboard",
                      "enable-touch", "force-lossless", "disable-display-resize",
                      "disable-server-input", "cert-tofu", "disable-gfx"})
_INTEGER = {"port": (1, 65535), "dest-port": (1, 65535), "color-depth": (8, 32),
            "autoretry": (0, 100), "font-size": (4, 96), "scrollback": (0, 100000),
            "server-alive-interval": (0, 3600), "quality-level": (0, 9),
            "compress-level": (0, 9), "timeout": (1, 3600)}
# cert-fingerprints: the RDP server certificate fingerprints guacd (FreeRDP) accepts, comma
# separated ("sha256:ab:cd:…"): hex, colons and the hash's name only, never a line break.
_FINGERPRINTS = re.compile(r"^[0-9A-Za-z:]{2,200}(?:, ?[0-9A-Za-z:]{2,200}){0,15}$")
_LINE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9._:%\[\]-]{1,253}$")
MAX_VALUE = 4096   # Guacamole's parameter_value column, and far below guacd's limits


class InvalidParameters(ValueError):
    """The message says which parameter is wrong and what is allowed; never a secret's value."""


def validate(protocol: str, given: Mapping[str, Any]) -> dict[str, str]:
    """Checked guacd parameters for *protocol*, as strings, with the default port filled in."""
    if protocol not in ALLOWED:
        raise InvalidParameters(
            f"unsupported protocol {protocol!r}: use one of {', '.join(sorted(ALLOWED))}")
    allowed = ALLOWED[protocol]
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidParameters(
            f"unknown parameter(s) for {protocol}: {', '.join(unknown)};"
            f" allowed: {', '.join(sorted(allowed))}")
    params: dict[str, str] = {}
    for name, value in given.items():
        if value is None:
            continue
        params[name] = _value(name, value)
    hostname = params.get("hostname", "")
    if not _HOSTNAME.match(hostname):
        raise InvalidParameters("hostname is required: a DNS name or an IP address")
    params.setdefault("port", str(DEFAULT_PORTS[protocol]))
    if protocol == "serial" and not _LINE.match(params.get("line", "")):
        raise InvalidParameters("line is required for serial: the kind of serial line, such"
                                " as ipmi-sol")
    if protocol == "telnet" and "password" in params and "login-failure-regex" not in params:
        # Without these guacd waits at a refused login forever; it wants both, and the end
        # of a shell prompt is what success looks like on most systems.
        params["login-failure-regex"] = "[Ll]ogin incorrect"
        params.setdefault("login-success-regex", "[$#%>] *$")
    return params


def _value(name: str, value: Any) -> str:
    shown = "the value" if name in SECRET else repr(value)
    if name in _BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else ""
        if value in ("true", "false", ""):
            return "true" if value == "true" else ""
        raise InvalidParameters(f"{name} must be true or false, not {shown}")
    if name in _INTEGER:
        return str(whole_number(name, value, *_INTEGER[name], shown=shown))
    if not isinstance(value, str):
        raise InvalidParameters(f"{name} must be a string")
    if name == "server-layout" and value not in RDP_LAYOUTS:
        raise InvalidParameters(f"server-layout must be one of {', '.join(sorted(RDP_LAYOUTS))}")
    if name == "cert-fingerprints" and not _FINGERPRINTS.match(value):
        raise InvalidParameters("cert-fingerprints must be certificate fingerprints such as"
                                " sha256:ab:cd:…, several separated by commas")
    if len(value) > MAX_VALUE:
        raise InvalidParameters(f"{name} is longer than {MAX_VALUE} characters")
    if "\x00" in value:
        raise InvalidParameters(f"{name} contains a NUL character")
    return value


def whole_number(name: str, value: Any, low: int, high: int, shown: str | None = None) -> int:
    """*value* (an int or its digits) as a number from *low* to *high*; otherwise
    InvalidParameters naming *name* and quoting the value as *shown* (default: its first 20
    characters), which for a secret must not be the value."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        number = None
    else:
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None:
        if shown is None:
            shown = repr(value[:20] if isinstance(value, str) else value)
        raise InvalidParameters(f"{name} must be a whole number, not {shown}")
    if not low <= number <= high:
        raise InvalidParameters(f"{name} must be between {low} and {high}")
    return number
