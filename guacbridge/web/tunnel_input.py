"""What the tunnel takes in, checked before it is used: the browser's query arguments (its
display and keyboard layout), the browser's messages (one per instruction, hostile until
proven otherwise), and from guacd the status in an ``error`` instruction and a ``required``
the tunnel may not pass on."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from .. import parameters, protocol
from ..guacd import Capabilities
from ..status import Status

# The longest browser message, in code points; one instruction is at most
# protocol.MAX_INSTRUCTION_LENGTH, and guacamole-common-js sends one per message.
MAX_MESSAGE = 2**20
DISCONNECT = protocol.encode("disconnect")   # a clean end, either way
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


class Display(NamedTuple):
    caps: Capabilities
    layout: str | None       # an RDP server layout, when the page names one


def display(arg: Callable[[str, str], str]) -> Display:
    """The browser's display from the tunnel's query arguments (*arg*: name, default →
    value); ValueError saying which argument is wrong."""
    number = parameters.whole_number
    caps = Capabilities(width=number("width", arg("width", "1024"), 1, 8192),
                        height=number("height", arg("height", "768"), 1, 8192),
                        dpi=number("dpi", arg("dpi", "96"), 24, 960),
                        timezone=_timezone(arg("timezone", "")))
    return Display(caps, _layout(arg("layout", "")))


def from_browser(framer: protocol.Framer, message: str) -> tuple[bytes, str]:
    """One browser message → (bytes for guacd, internal replies for the browser).

    All or nothing: :meth:`Framer.feed` returns nothing of a chunk it refuses, so a message
    with any malformed or over-limit part raises ProtocolError and none of it is forwarded,
    not even the valid instructions before the bad one."""
    text = framer.feed(message)
    replies = ""
    if text.startswith("0.") or ";0." in text:
        forward, echo = [], []
        for raw in protocol.split(text):
            if not protocol.is_internal(raw):
                forward.append(raw)
            elif protocol.parse(raw)[1:2] == ["ping"]:
                echo.append(raw)
        text, replies = "".join(forward), "".join(echo)
    try:
        return text.encode(), replies
    except UnicodeEncodeError:     # a lone surrogate: Tornado never passes one, but say so
        raise protocol.ProtocolError("text that is not valid Unicode") from None


def error_in(text: str) -> tuple[Status, str]:
    """The status and message of an ``error`` instruction in *text*, if there is one."""
    for raw in protocol.split(text):
        if raw.startswith("5.error,"):
            elements = protocol.parse(raw)
            if len(elements) >= 3 and elements[2].isdigit():
                return Status.of(int(elements[2])), elements[1]
            return Status.SERVER_ERROR, elements[1] if len(elements) > 1 else "guacd error"
    return Status.SUCCESS, ""


def ends_with_disconnect(text: str) -> bool:
    """Whether the last whole instruction in *text* is guacd's ``disconnect``."""
    instructions = protocol.split(text)
    return bool(instructions) and instructions[-1] == DISCONNECT


def has_opcode(text: str, opcode: str) -> bool:
    """Whether any whole instruction in *text* is an *opcode* one."""
    head = f"{len(opcode)}.{opcode}"
    return any(raw.startswith(head) and raw[len(head)] in ",;" for raw in protocol.split(text))


def required_refusal(text: str) -> tuple[str, str]:
    """guacd asks in *text* (its ``required``) for credentials a console opened with
    "prompt": false was not given: the browser's message and the log's reason, naming them
    (never their values: there are none). The tunnel ends with 0x0301 then."""
    asked = sorted({name for raw in protocol.split(text) if raw.startswith("8.required,")
                    for name in protocol.parse(raw)[1:]})
    names = ", ".join(asked[:8]) or "credentials"
    message = (f"The server asks for credentials the console was not given ({names}), and"
               " this console does not prompt for them: ask for a console with them.")
    return message, f"guacd required {names}; prompt is false"


def _layout(value: str) -> str | None:
    if not value:
        return None
    if value not in parameters.RDP_LAYOUTS:
        raise ValueError(f"unknown keyboard layout {value[:32]!r}")
    return value


def _timezone(value: str) -> str | None:
    if not value:
        return None
    if not _TIMEZONE.match(value):
        raise ValueError("timezone must be an IANA name such as Europe/Berlin")
    return value
