"""Serial consoles: a server's serial line (IPMI Serial-over-LAN, a VM's serial port) as a
terminal that guacd reaches over telnet.

guacd has no serial protocol, so guacbridge brings the line to it: for each new guacd
connection of a serial console, guacbridge opens the line through a *line source* and a
one-connection telnet listener (see serial_bridge.py) and hands guacd that listener as an
ordinary telnet target. The page, its menu, recording, sharing and third-party tunnel
clients see a terminal console like any other.

This module owns the contract every line source implements, and the registry of sources by
*line kind* — the ``line`` parameter of a console's ``serial`` target:

- :class:`SerialLine`: one open line, bytes both ways; ``read()`` answers ``b""`` once the
  line has ended, and ``reason`` then says why, in words the browser may show.
- an opener: ``async (params, settings) -> SerialLine``, registered with :func:`register`;
  it raises :class:`SerialError` (an HTTP status and details without any secret) when the
  line cannot be opened: 403 refused credentials, 409 line busy, 502/504 unreachable.

Built in: ``ipmi-sol`` (serial_ipmi.py); other sources register from their own module
(``ovirt-vmconsole``) or an entry point of the ``guacbridge.serial_lines`` group.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from .errors import StatusError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

PROTOCOL = "serial"          # a console target's protocol for a serial line


class SerialError(StatusError):
    """The line cannot be opened, or broke: an HTTP status (403 the credentials were
    refused, 404 no such line, 409 the line is busy, 502 the far side refused, 504 it did not
    answer) and details safe to show (never a credential)."""


class SerialLine(Protocol):
    """One open serial line. Only one task reads and one writes at a time."""

    @property
    def reason(self) -> str | None:
        """Why the line ended (for the browser), once ``read`` has answered ``b""``."""
        ...

    async def read(self) -> bytes:
        """The next bytes the line sent (as they come, any size); ``b""`` once it ended."""
        ...

    async def write(self, data: bytes) -> None:
        """Send *data* down the line (keys typed, pasted text)."""
        ...

    async def close(self) -> None:
        """End the line (idempotent); a pending ``read`` then answers ``b""``."""
        ...


Opener = Callable[[Mapping[str, str], "Settings"], Awaitable[SerialLine]]
# guacbridge's own line sources, by module: ipmi-sol, ovirt-vmconsole.
BUILT_IN = ("serial_ipmi", "serial_vmconsole")
_OPENERS: dict[str, Opener] = {}
_loaded = False


def register(kind: str, opener: Opener) -> None:
    """Offer *opener* for serial targets whose ``line`` is *kind* (e.g. ``ipmi-sol``)."""
    _OPENERS[kind] = opener


def kinds() -> tuple[str, ...]:
    """The line kinds on offer, sorted."""
    _load()
    return tuple(sorted(_OPENERS))


async def open_line(params: Mapping[str, str], settings: Settings) -> SerialLine:
    """Open the line a serial target's *params* name (``line`` says which source); a
    SerialError(400) for a kind nobody offers."""
    _load()
    kind = params.get("line", "")
    opener = _OPENERS.get(kind)
    if opener is None:
        raise SerialError(400, f"serial line kind {kind!r} is not offered: use one of"
                               f" {', '.join(sorted(_OPENERS)) or 'none'}")
    return await opener(params, settings)


def _load() -> None:
    """The built-in sources and the installed plug-ins, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILT_IN:        # each registers its kind when imported
        if importlib.util.find_spec(f"{__package__}.{module}") is not None:
            importlib.import_module(f"{__package__}.{module}")
    for entry in metadata.entry_points(group="guacbridge.serial_lines"):
        if entry.name in _OPENERS:
            continue
        try:
            register(entry.name, entry.load())
        except Exception:
            log.exception("serial line plug-in %s could not be loaded; it is not offered",
                          entry.name)
