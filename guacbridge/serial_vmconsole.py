"""oVirt's serial console as a line source: kind ``ovirt-vmconsole``.

oVirt reaches a VM's serial console through its *vmconsole proxy*, an SSH server on the
engine host (port 2222) that takes user ``ovirt-vmconsole`` with public-key authentication
only: the key, registered for an engine user, decides which VMs it may open. The proxy's
forced command reads what the client asked to run (``connect --vm-id=ID``), looks the VM up
among the ones that key may open, and joins the SSH session to the VM's virtio serial port on
its host. It needs a pty. It answers a VM it will not open with ``ERROR: VM with id '…' is
unavailable`` and a console it cannot attach with ``ERROR: Console '…' is not available``,
then exits.

So this module is an SSH client (asyncssh: asyncio-native, on the cryptography we depend on
anyway) that logs in with guacbridge's key and no other method, checks the proxy's host key
against a known-hosts file (never trusts a key it has not been given: no first-use trust,
no disabled check), asks for the VM by id with a pty, and hands the session's bytes on as a
:class:`~guacbridge.serial.SerialLine`. Errors say what the operator can do, and never hold
key material: a refused key 403, no such VM 404, the console busy 409, the proxy's host key
unknown or its other refusals 502, no answer 504, guacbridge's own configuration missing 503.

Target parameters: ``hostname`` and ``port`` (the proxy, judged by the target policy first),
``vm`` (the VM's id) and, from the oVirt agent, ``location`` (whose engine's
``vmconsole_key_file`` is used, if it has one). Settings: ``vmconsole.*`` (config.py).
"""
from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncssh

from . import serial
from .agents import run_blocking
from .serial import SerialError

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)
# asyncssh logs some eight INFO lines for every connection (addresses, auth, channel): ours
# says in one line which VM was opened where. An operator who set its level keeps theirs.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

KIND = "ovirt-vmconsole"
DEFAULT_PORT = 2222
# How long a fresh session is watched for the proxy's own refusal (it looks the VM up at
# the engine, then exits with "ERROR: …") before the line is handed on. Any other output ends
# the wait at once; a refusal later than this still ends the line with the proxy's words.
SETTLE = 1.5
CHUNK = 65536
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_ERROR = re.compile(rb"ERROR: ?([^\r\n]*)")


def engine_host(conf: Mapping[str, Any]) -> tuple[str, int]:
    """Where an oVirt engine's vmconsole proxy listens: ``vmconsole_host`` (default: the
    host of the engine's API ``url``) and ``vmconsole_port`` (default 2222)."""
    host = str(conf.get("vmconsole_host") or urlsplit(str(conf.get("url") or "")).hostname
               or "")
    return host, int(conf.get("vmconsole_port", DEFAULT_PORT))


class VmconsoleLine:
    """One VM's serial console: an SSH session with the vmconsole proxy."""

    def __init__(self, conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess,
                 where: str, first: asyncio.Future[bytes] | None) -> None:
        self._conn = conn
        self._process = process
        self._where = where
        self._first = first
        self._tail = b""
        self._reason: str | None = None
        self._closed = False

    @property
    def reason(self) -> str | None:
        return self._reason

    async def read(self) -> bytes:
        if self._reason is not None:
            return b""
        try:
            if self._first is not None:
                first, self._first = self._first, None
                data = await first
            else:
                data = await self._process.stdout.read(CHUNK)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
            data = b""
        if data:
            self._tail = (self._tail + data)[-512:]
            return data
        if not self._closed:        # the exit status can come just after the output's end
            try:
                await asyncio.wait_for(self._process.wait_closed(), 2)
            except (TimeoutError, asyncssh.Error, OSError):
                pass
        self._reason = self._ended()
        return b""

    async def write(self, data: bytes) -> None:
        if self._reason is not None or self._closed:
            return
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except (asyncssh.Error, OSError, BrokenPipeError):
            pass         # the read side sees the end and says why

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._first is not None:
            self._first.cancel()
        self._process.close()
        self._conn.close()
        try:
            await asyncio.wait_for(self._conn.wait_closed(), 5)
        except (TimeoutError, asyncssh.Error, OSError):
            pass

    def _ended(self) -> str:
        if self._closed:
            return "the serial console was closed"
        status = self._process.exit_status
        said = _said(self._tail)
        if said and status not in (None, 0):
            return f"the vmconsole proxy at {self._where} ended the console: {said}"
        if status is None and self._process.exit_signal is None:
            return f"the connection to the vmconsole proxy at {self._where} was lost"
        return f"the VM's serial console at {self._where} ended"


async def open_vmconsole(params: Mapping[str, str], settings: Settings) -> VmconsoleLine:
    """The serial console of VM ``params["vm"]`` through the proxy at ``hostname:port``."""
    host = params.get("hostname", "")
    vm = params.get("vm", "")
    try:
        port = int(params.get("port") or DEFAULT_PORT)
    except ValueError:
        raise SerialError(400, "port must be the vmconsole proxy's port number") from None
    if not host:
        raise SerialError(400, "hostname is required: the oVirt engine's vmconsole proxy")
    if not _UUID.match(vm):
        raise SerialError(400, "vm is required: the VM's id (a UUID), as the oVirt agent"
                               " gives it")
    key_file, where = _key_file(params, settings, host, port)
    known_hosts = settings.vmconsole_known_hosts
    if known_hosts is None:
        raise SerialError(503, "vmconsole.known_hosts is not set: guacbridge checks the"
                               " vmconsole proxy's host key against it (docs/serial.rst)")
    key = await run_blocking(_read_key, key_file)     # a file on a slow mount waits there
    try:
        conn = await asyncssh.connect(
            host, port, username=settings.vmconsole_user, client_keys=[key],
            known_hosts=str(known_hosts), config=None, agent_path=None, password=None,
            preferred_auth="publickey", kbdint_auth=False, gss_auth=False,
            host_based_auth=False, connect_timeout=settings.vmconsole_timeout,
            login_timeout=settings.vmconsole_timeout, keepalive_interval=30)
    except asyncssh.PermissionDenied:
        raise SerialError(403, f"the vmconsole proxy at {where} refused guacbridge's key for"
                               f" {settings.vmconsole_user}: register its public key as an"
                               " engine user's serial console key") from None
    except asyncssh.HostKeyNotVerifiable:
        raise SerialError(502, f"the vmconsole proxy at {where} showed a host key that"
                               f" {known_hosts} does not vouch for: add the proxy's key (or"
                               " its CA) there if it is the engine's") from None
    except ConnectionRefusedError:
        raise SerialError(502, f"the vmconsole proxy at {where} refused the connection:"
                               " is ovirt-vmconsole-proxy-sshd running?") from None
    except (TimeoutError, socket.gaierror, OSError):
        raise SerialError(504, f"the vmconsole proxy at {where} is unreachable or did not"
                               " answer in time") from None
    except asyncssh.Error as e:
        raise SerialError(502, f"the vmconsole proxy at {where} broke off the SSH login"
                               f" ({_words(e.reason)})") from None
    try:
        process = await conn.create_process(
            f"connect --vm-id={vm}", term_type="xterm", term_size=(80, 24),
            request_pty="force", encoding=None, stderr=asyncssh.STDOUT)
    except (asyncssh.Error, OSError) as e:
        conn.close()
        raise SerialError(502, f"the vmconsole proxy at {where} opened no session"
                               f" ({_words(getattr(e, 'reason', '') or type(e).__name__)})"
                               ) from None
    first = await _settled(conn, process, where, vm)
    log.info("serial console of VM %s opened through the vmconsole proxy at %s", vm, where)
    return VmconsoleLine(conn, process, where, first)


async def _settled(conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess,
                   where: str, vm: str) -> asyncio.Future[bytes]:
    """The session's first read, still pending or with bytes that are not a refusal; the
    proxy's refusal within SETTLE seconds is a SerialError in its own words."""
    first: asyncio.Future[bytes] = asyncio.ensure_future(process.stdout.read(CHUNK))
    done, _ = await asyncio.wait({first}, timeout=SETTLE)
    if not done:
        return first
    try:
        data = first.result()
    except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
        data = b""
    if data and not data.lstrip().startswith(b"ERROR:"):
        return first
    try:               # the refusal's whole text, up to the proxy's exit
        rest = await asyncio.wait_for(process.stdout.read(-1), 3)
    except (TimeoutError, asyncssh.Error, OSError, asyncio.IncompleteReadError):
        rest = b""
    conn.close()
    said = _said(data + rest) or "it closed the session"
    if "unavailable" in said or "No available" in said:
        raise SerialError(404, f"the vmconsole proxy at {where} offers no VM {vm} to"
                               f" guacbridge's key ({said}): is the VM running, its VirtIO"
                               " serial console enabled, and may the key's engine user open"
                               " its console?")
    if "not available" in said:
        raise SerialError(409, f"the serial console of VM {vm} is busy or cannot be attached"
                               f" now ({said}): retry once its other session has ended")
    raise SerialError(502, f"the vmconsole proxy at {where} refused the console ({said})")


def _key_file(params: Mapping[str, str], settings: Settings, host: str,
              port: int) -> tuple[pathlib.Path, str]:
    """guacbridge's key for this proxy: its engine's ``vmconsole_key_file`` when the target
    names a location (the proxy must then be that engine's), else ``vmconsole.key_file``."""
    where = f"{host}:{port}"
    location = params.get("location")
    key_file = settings.vmconsole_key_file
    if location:
        conf = settings.agents.get("ovirt", {}).get(location)
        if not isinstance(conf, Mapping):
            raise SerialError(400, f"unknown oVirt location {location!r}")
        if engine_host(conf) != (host, port):
            raise SerialError(400, f"location {location} has its vmconsole proxy at"
                                   f" {':'.join(map(str, engine_host(conf)))}, not {where}")
        if conf.get("vmconsole_key_file"):
            key_file = pathlib.Path(conf["vmconsole_key_file"])
    if key_file is None:
        raise SerialError(503, "no key for oVirt's vmconsole proxy: set vmconsole.key_file"
                               " (or the engine's vmconsole_key_file)")
    return key_file, where


def _read_key(path: pathlib.Path) -> asyncssh.SSHKey:
    """The private key, or a SerialError(503) naming the file and never its content."""
    try:
        return asyncssh.read_private_key(path)
    except OSError as e:
        raise SerialError(503, f"cannot read the vmconsole key {path}: {e.strerror}") from None
    except (asyncssh.KeyImportError, ValueError):
        raise SerialError(503, f"the vmconsole key {path} is not an unencrypted OpenSSH or"
                               " PEM private key") from None


def _said(output: bytes) -> str:
    """The proxy's last ``ERROR: …`` line, as printable text of at most 200 characters."""
    found = _ERROR.findall(output)
    return _words(found[-1].decode("utf-8", "replace")) if found else ""


def _words(text: Any) -> str:
    return "".join(c for c in str(text) if c.isprintable())[:200]


serial.register(KIND, open_vmconsole)
