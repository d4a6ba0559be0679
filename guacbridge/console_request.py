"""The one definition of a console request: its fields, their rules, and their schemas.

``POST /api/v1/consoles``, an ``open`` job on the broker and the legacy route all hand the core
a request that :func:`parse` checks, so each accepts the same fields with the same errors.
The JSON Schemas that document the request (the OpenAPI document's ``ConsoleRequest``, the job
contract ``schemas/job-v1.json``) are :func:`schema`'s output; a test holds the shipped files
to it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConsoleError

FIELDS = ("target", "user", "sink", "name", "extra_token", "ttl", "max_duration", "recording",
          "power", "prompt")
TEXT_LIMITS = {"user": 128, "name": 100, "extra_token": 256}   # characters
MAX_TTL = 3600          # seconds an unused console link may wait for its first use
SINKS = ("direct", "guacamole")
_RECORDING = ("Record the session (guacd writes it; keystrokes only with keys: true). Needs"
              " recordings.dir on the service.")

_PROMPT = ("When guacd finds a credential missing (a VNC or RDP password, a user name), the"
           " console page asks its user for it. false: the console fails instead, at once,"
           " with 0x0301 (a client of the tunnel gets guacd's `required` only when true).")
_POWER = ("Give the console its target's power control (state, on, shutdown, off, reset...:"
          " what the agent offers), through the API's power scope and the console page.")


@dataclasses.dataclass(frozen=True)
class ConsoleRequest:
    target: Mapping[str, Any]      # as the agent takes it
    sink: str                      # direct | guacamole
    user: str | None
    name: str | None               # the guacamole sink's connection name
    extra_token: str | None        # a second secret the tunnel must present
    ttl: int                       # seconds the link waits for its first use
    duration: int                  # seconds the session lasts from first use
    record: bool
    record_keys: bool
    power: bool = False            # the console may switch its target's power (the agent's)
    prompt: bool = True            # the page asks for credentials guacd finds missing

    @property
    def agent(self) -> Any:
        return self.target.get("agent", "static")


def parse(body: Any, *, use_by: int, duration: int, max_duration: int,
          sinks: tuple[str, ...], recording: Callable[[Any], tuple[bool, bool]]
          ) -> ConsoleRequest:
    """A checked request, or ConsoleError(400) naming the field and its rule. *recording*
    decides the ``recording`` field (the service's recording policy); ValueError from it is
    the caller's mistake."""
    if not isinstance(body, Mapping):
        raise ConsoleError(400, "the request body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ConsoleError(400, f"unknown field(s): {', '.join(unknown)}")
    target = body.get("target")
    if not isinstance(target, Mapping):
        raise ConsoleError(400, "target is required: an object with agent, protocol, hostname…")
    sink = body.get("sink") or "direct"
    if sink not in sinks:
        raise ConsoleError(400 if sink not in SINKS else 501,
                           f"sink {sink!r} is not available; use one of: {', '.join(sinks)}")
    user, name, extra = (_text(body, field) for field in ("user", "name", "extra_token"))
    if sink == "guacamole" and user is None:
        raise ConsoleError(400, "the guacamole sink needs user: the Guacamole user's name")
    prompt = _prompt(body)
    if sink == "guacamole" and not prompt:
        raise ConsoleError(400, "prompt false needs the direct sink: Guacamole's own page asks"
                                " for missing credentials itself")
    try:
        record, keys = recording(body.get("recording"))
    except ValueError as e:
        raise ConsoleError(400, str(e)) from None
    return ConsoleRequest(target=target, sink=sink, user=user, name=name, extra_token=extra,
                          ttl=_seconds(body, "ttl", use_by, MAX_TTL),
                          duration=_seconds(body, "max_duration", duration, max_duration),
                          record=record, record_keys=keys, power=_flag(body, "power"),
                          prompt=prompt)


def schema(dialect: str) -> dict[str, Any]:
    """The request's properties as JSON Schema: ``openapi`` (OpenAPI 3.0's dialect, the
    target by reference) or ``job`` (draft 2020-12, inside the job contract)."""
    openapi = dialect == "openapi"

    def text(field: str) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": TEXT_LIMITS[field]}
    extra = text("extra_token")
    if openapi:
        extra["nullable"] = True
    else:
        extra["type"] = ["string", "null"]
    return {
        "target": {"$ref": "#/components/schemas/Target"} if openapi else {
            "type": "object", "description": "As in POST /api/v1/consoles: agent, protocol,"
                                             " hostname, port, password, ..."},
        "user": text("user"),
        "sink": {"type": "string", "enum": list(SINKS)},
        "name": text("name"),
        "extra_token": extra,
        "ttl": {"type": "integer", "minimum": 1, "maximum": MAX_TTL},
        "max_duration": {"type": "integer", "minimum": 1},
        "recording": {"description": _RECORDING, "oneOf": [
            {"type": "boolean"},
            {"type": "object", "additionalProperties": False,
             "properties": {"keys": {"type": "boolean"}}}]},
        "power": {"type": "boolean", "default": False, "description": _POWER},
        "prompt": {"type": "boolean", "default": True, "description": _PROMPT},
    }


def _prompt(body: Mapping[str, Any]) -> bool:
    value = body.get("prompt", True)
    if not isinstance(value, bool):
        raise ConsoleError(400, "prompt must be true or false")
    return value


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value, limit = body.get(name), TEXT_LIMITS[name]
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ConsoleError(400, f"{name} must be a string of 1 to {limit} characters")
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ConsoleError(400, f"{name} must be true or false")
    return value


def _seconds(body: Mapping[str, Any], name: str, default: int, limit: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ConsoleError(400, f"{name} must be a whole number of seconds from 1 to {limit}")
    return value
