"""The ``ipmi-sol`` line source: a server's serial console through its BMC's IPMI 2.0
Serial-over-LAN (RMCP+), with pyghmi.

A serial target ``{"protocol": "serial", "line": "ipmi-sol", "hostname": BMC, "port": 623,
"username": …, "password": …}`` (the BMC agent's ``ipmi-sol`` preset makes one from an
inventory server) opens one SOL session per guacd connection.

pyghmi's SOL client is callback-driven and blocking: its session loop
(``Console.wait_for_rsp``) must be pumped for anything to arrive or leave, a send waits for
the BMC's acknowledgement, and its sessions are process-wide state (seen with ipmi_sim: once
one SOL has ended, a second SOL in the same process is never activated). So each line runs
in a small child process of its own (``python -m guacbridge.serial_ipmi``): the login comes
on its stdin (never its command line), then typed bytes; on its stdout come frames (a kind
byte, a 4-byte length, the payload): ``O`` activated, ``D`` the server's bytes, ``E`` why
it failed or ended. One thread pumps pyghmi's loop and sends what was typed, one reads
stdin. The parent's side is plain asyncio.

A refusal's words are pyghmi's fixed texts, mapped to a status (403 login refused, 409 SOL
busy or disabled, 504 no answer) and shown with the BMC's address, never the credentials.
One SOL per BMC login at a time from this instance: a second waits a moment for the first
to end (a reconnect's old line) and is then refused with 409.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import random
import struct
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from . import serial
from .config import Settings
from .serial import SerialError

log = logging.getLogger(__name__)

KIND = "ipmi-sol"
OPEN_TIMEOUT = 15.0     # seconds the BMC has to activate the payload (pyghmi: ~6 s timeout)
BUSY_WAIT = 3.0         # seconds a second SOL of the same login waits for the first to end
_PUMP = 0.05            # seconds per turn of pyghmi's loop: how soon typed keys leave
_HEAD = struct.Struct(">cI")
_REFUSED = ("incorrect password", "unauthorized", "unknown user", "insufficient privilege",
            "invalid user", "rakp")
_BUSY = ("active for another client", "maximum sol session", "sol is disabled",
         "already active")
_held: set[tuple[str, int, str]] = set()
# The last SOL sequence number each BMC login was sent from here: the next session starts
# past it. ipmi_sim (and maybe other BMCs) takes a new session's first packet for a repeat
# of the last one when their numbers match, and drops what was typed.
_last_seq: dict[tuple[str, int, str], int] = {}


def status_of(error: str) -> int:
    """The HTTP status for pyghmi's words about a refused or failed SOL."""
    words = error.lower()
    if any(w in words for w in _REFUSED):
        return 403
    if any(w in words for w in _BUSY):
        return 409
    if "timeout" in words or "no longer connected" in words or "connection lost" in words:
        return 504
    return 502


class IpmiSol:
    """One SOL session as a SerialLine: its child process's frames."""

    def __init__(self, process: asyncio.subprocess.Process, where: str,
                 key: tuple[str, int, str]) -> None:
        self._process = process
        self.where = where
        self._key = key
        self._reason: str | None = None
        self._ended = False

    @property
    def reason(self) -> str | None:
        return self._reason

    async def frame(self) -> tuple[bytes, bytes]:
        """The child's next frame (kind, payload); (b"", b"") once it has gone."""
        assert self._process.stdout is not None
        try:
            head = await self._process.stdout.readexactly(_HEAD.size)
            kind, size = _HEAD.unpack(head)
            return kind, await self._process.stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return b"", b""

    async def read(self) -> bytes:
        while not self._ended:
            kind, payload = await self.frame()
            if kind == b"D":
                return payload
            if kind == b"S":
                self._seq(payload)
                continue
            if kind != b"O":
                self._ended = True
                if self._reason is None:
                    why = payload.decode("utf-8", "replace")[:200] or "its helper ended"
                    self._reason = f"the BMC at {self.where} ended the SOL session: {why}"
        await self.close()
        return b""

    async def write(self, data: bytes) -> None:
        stdin = self._process.stdin
        if self._ended or stdin is None or stdin.is_closing():
            return
        stdin.write(data)
        with contextlib.suppress(ConnectionError):
            await stdin.drain()

    async def close(self) -> None:
        """Ends the child (its stdin closes: it deactivates SOL and logs out)."""
        self._ended = True
        self._reason = self._reason or "the console closed the SOL session"
        process = self._process
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        if process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        while True:       # what the child said last, unread: its last sequence number
            kind, payload = await self.frame()
            if not kind:
                break
            if kind == b"S":
                self._seq(payload)
        _held.discard(self._key)

    def _seq(self, payload: bytes) -> None:
        if payload and payload[0]:      # 0: this session sent nothing
            _last_seq[self._key] = payload[0] % 15 + 1


async def open_sol(params: Mapping[str, str], settings: Settings) -> IpmiSol:
    """Activate SOL on the BMC *params* name; SerialError when it cannot."""
    host, port = params.get("hostname", ""), int(params.get("port") or 623)
    userid = params.get("username", "")
    login = {"bmc": host, "port": port, "userid": userid,
             "password": params.get("password", "")}
    key = (host, port, userid)
    deadline = time.monotonic() + BUSY_WAIT
    while key in _held:
        if time.monotonic() > deadline:
            raise SerialError(409, f"the SOL of the BMC at {host} is in use by another console"
                                   " of guacbridge: close that one, or wait for it to end")
        await asyncio.sleep(0.1)
    _held.add(key)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    except OSError as e:
        _held.discard(key)
        raise SerialError(503, f"the SOL helper cannot start: {e.strerror}") from None
    line = IpmiSol(process, host, key)
    assert process.stdin is not None
    process.stdin.write(json.dumps({**login, "seq": _last_seq.get(key, 0)}).encode() + b"\n")
    async def answer() -> tuple[bytes, bytes]:
        while True:
            kind, payload = await line.frame()
            if kind != b"S":
                return kind, payload
            line._seq(payload)
    try:
        kind, payload = await asyncio.wait_for(answer(), OPEN_TIMEOUT + 5)
    except BaseException:
        await line.close()
        raise
    if kind != b"O":
        await line.close()
        words = payload.decode("utf-8", "replace")[:200] or "no answer"
        raise SerialError(status_of(words),
                          f"the BMC at {host} refused Serial-over-LAN: {words}")
    log.info("SOL of the BMC at %s:%d activated", host, port)
    return line


# -- the child process ------------------------------------------------------------------


def _child() -> None:
    """One SOL session between stdin/stdout and the BMC whose login is stdin's first
    line; ends when stdin ends or the BMC ends the session."""
    from pyghmi.ipmi import console
    out_lock = threading.Lock()
    stdout = sys.stdout.buffer
    typed: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    done = threading.Event()
    failed: list[str] = []

    def send(kind: bytes, payload: bytes) -> None:
        with out_lock:
            stdout.write(_HEAD.pack(kind, len(payload)) + payload)
            stdout.flush()

    def arrived(data: Any) -> None:
        if isinstance(data, (bytes, bytearray)):
            send(b"D", bytes(data))
        elif isinstance(data, str):
            send(b"D", data.encode())
        elif isinstance(data, dict) and "error" in data:
            failed.append(str(data["error"])[:200])
            done.set()
        elif isinstance(data, dict) and "info" in data:
            send(b"D", f"\r\n[BMC: {str(data['info'])[:200]}]\r\n".encode())

    def keys() -> None:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                done.set()
                return
            typed.put(chunk)

    stdin = sys.stdin.buffer
    login = json.loads(stdin.readline())
    start = int(login.pop("seq", 0)) or random.randrange(1, 16)
    sol = console.Console(iohandler=arrived, **login)
    sol.myseq = start - 1       # pyghmi counts up before each send
    del login
    deadline = time.monotonic() + OPEN_TIMEOUT
    opened = False
    reader = threading.Thread(target=keys, daemon=True)
    try:
        while not done.is_set():
            console.Console.wait_for_rsp(_PUMP)
            if sol.connected and not sol.broken and not opened:
                opened = True
                send(b"O", b"")
                reader.start()
            elif not opened and time.monotonic() > deadline:
                failed.append("timeout")
                break
            while opened:
                try:
                    chunk = typed.get_nowait()
                except queue.Empty:
                    break
                sol.send_data(chunk)        # waits for the BMC's acknowledgement
    finally:
        send(b"S", bytes([sol.myseq & 0xF]))
        send(b"E", (failed[0] if failed else "").encode())
        session = sol.ipmi_session
        with contextlib.suppress(Exception):
            if sol.connected and not sol.broken:
                sol.close()         # deactivates the payload: the BMC's SOL is free
        with contextlib.suppress(Exception):
            if session is not None:
                session.logout()
    os._exit(0)     # the stdin reader may still be blocked


serial.register(KIND, open_sol)

if __name__ == "__main__":
    _child()
