"""``guacbridge probe``: a blocking handshake with a target through guacd, for ops.

pyguacamole's client fits a one-shot command, but it cuts instructions at the first ``;``
(values may contain one) and answers guacd's protocol version with an empty string (guacd then
falls back to 1.0.0 and refuses). :class:`ProbeClient` fixes both on top of our codec.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from guacamole.client import GuacamoleClient
from guacamole.instruction import GuacamoleInstruction

from . import protocol
from .guacd import Protocol


class ProbeClient(GuacamoleClient):
    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        super().__init__(host, port, timeout=timeout)
        self._framer = protocol.Framer()
        self._queue: list[str] = []

    def receive(self) -> str | None:
        """One whole raw instruction, however guacd's bytes were split."""
        while not self._queue:
            data = self.client.recv(65536)
            if not data:
                self.close()
                return None
            self._queue.extend(protocol.split(self._framer.feed(data)))
        return self._queue.pop(0)

    def read_instruction(self) -> GuacamoleInstruction | None:
        raw = self.receive()
        if raw is None:
            return None
        elements = protocol.parse(raw)
        return GuacamoleInstruction(elements[0], *elements[1:])

    def send_instruction(self, instruction: GuacamoleInstruction) -> None:
        self.send(protocol.encode(instruction.opcode, *instruction.args))

    def handshake(self, protocol_name: str = "vnc", width: int = 1024, height: int = 768,
                  dpi: int = 96, params: Mapping[str, str] | None = None,
                  **_: object) -> None:
        """select → args → size/audio/video/image → connect (with the version) → ready."""
        params = params or {}
        self.send_instruction(GuacamoleInstruction("select", protocol_name))
        args = self._expect("args")
        version, names = Protocol.offered(args)
        for opcode, caps in (("size", (width, height, dpi)), ("audio", ()),
                             ("video", ()), ("image", ("image/png",))):
            self.send_instruction(GuacamoleInstruction(opcode, *caps))
        values = [params.get(name, "") for name in names]
        if version.negotiated:
            values.insert(0, version.name)
        self.send_instruction(GuacamoleInstruction("connect", *values))
        ready = self._expect("ready")
        self._id = ready[0] if ready else None
        self.connected = True

    def _expect(self, opcode: str) -> list[str]:
        while True:
            instruction = self.read_instruction()
            if instruction is None:
                raise ProbeFailed(f"guacd closed the connection before {opcode!r}", None)
            if instruction.opcode == "error":
                raise ProbeFailed(*_error(instruction.args))
            if instruction.opcode == opcode:
                return list(instruction.args)


class ProbeFailed(Exception):
    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclasses.dataclass
class ProbeResult:
    ok: bool
    ready_seconds: float | None = None       # guacd answered ready (before the target is reached)
    first_frame_seconds: float | None = None  # first sync with no error: the console is up
    status: int | None = None
    message: str = ""


def probe(guacd: tuple[str, int], protocol_name: str, params: Mapping[str, str],
          timeout: float = 15.0) -> ProbeResult:
    """Handshake with the target through guacd and wait for its first frame."""
    started = time.monotonic()
    client = ProbeClient(*guacd, timeout=timeout)
    result = ProbeResult(ok=False)
    try:
        client.handshake(protocol_name, params=params)
        result.ready_seconds = time.monotonic() - started
        while time.monotonic() - started < timeout:
            instruction = client.read_instruction()
            if instruction is None:
                result.message = "guacd closed the connection"
                break
            if instruction.opcode == "error":
                result.message, result.status = _error(instruction.args)
                break
            if instruction.opcode == "sync":
                client.send_instruction(GuacamoleInstruction("sync", instruction.args[0]))
                result.ok = True
                result.first_frame_seconds = time.monotonic() - started
                result.message = "console up"
                break
        else:
            result.message = "no frame before the timeout"
    except ProbeFailed as e:
        result.message, result.status = e.message, e.status
    except OSError as e:
        result.message = f"guacd at {guacd[0]}:{guacd[1]} is not reachable ({e.strerror or e})"
    finally:
        if client._client is not None:
            client.close()
    return result


def _error(args: tuple | list) -> tuple[str, int | None]:
    message = str(args[0]) if args else "guacd error"
    status = int(args[1]) if len(args) > 1 and str(args[1]).isdigit() else None
    return message, status
