"""The Guacamole instruction codec: ``LEN.VALUE,LEN.VALUE,…;`` with lengths in code points.

This is the relay's hot path. :class:`Framer` finds where whole instructions end in a stream
of arbitrary chunks and hands them back as one slice of text, without building an object per
instruction: the relay forwards most instructions without looking inside them. It decodes
UTF-8 incrementally (a chunk may end inside a character), so Python's code-point string
indices line up with the protocol's lengths. guacd's limits (8192 code points and 128
elements per instruction) are enforced as soon as they are certain to be broken, so a
hostile peer cannot make us buffer without bound: a Framer holds less than one
instruction (8192 code points, plus up to 3 bytes of a split character). Over a limit is
:class:`ProtocolLimit`, anything else malformed is :class:`ProtocolError`. :func:`split`
and :func:`parse` take the text apart where the caller does need the elements (the
handshake, browser → guacd).

The boundary scan runs in C when ``guacbridge._framescan`` was built (``_framescan.c``, about
twice the relay's throughput); the Python loop in :meth:`Framer.feed` is the definition and
takes over from the C scan wherever input is malformed, so errors are the same either way.
"""
from __future__ import annotations

import codecs
from collections.abc import Callable

# (text, pos, start, count, max_length, max_elements, max_digits) -> (done, pos, start, count, ok)
_scan_in_c: Callable[[str, int, int, int, int, int, int], tuple[int, int, int, int, int]] | None
try:
    from ._framescan import scan as _scan_in_c
except ImportError:       # built without a C compiler: the Python loop alone
    _scan_in_c = None

MAX_INSTRUCTION_LENGTH = 8192
MAX_ELEMENTS = 128
_MAX_DIGITS = 5   # a length prefix longer than this breaks the instruction limit anyway


class ProtocolError(ValueError):
    """Malformed or over-limit input; the message says what, quoting little of the data."""


class ProtocolLimit(ProtocolError):
    """Well-formed so far, but over a limit (length, elements): CLIENT_OVERRUN, not BAD_REQUEST."""


def encode(*elements: object) -> str:
    """One instruction: ``encode("size", 0, 1024)`` → ``'4.size,1.0,4.1024;'``."""
    parts = []
    for element in elements:
        text = str(element)
        parts.append(f"{len(text)}.{text}")
    return ",".join(parts) + ";"


class Framer:
    """Incremental boundary finder for one direction of a connection."""

    __slots__ = ("_decoder", "_buf", "_pos", "_start", "_count", "max_length", "max_elements")

    def __init__(self, max_length: int = MAX_INSTRUCTION_LENGTH,
                 max_elements: int = MAX_ELEMENTS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._buf = ""      # text not yet returned
        self._pos = 0       # where scanning resumes in _buf (start of the next element)
        self._start = 0     # start of the instruction being scanned
        self._count = 0     # elements of that instruction seen so far
        self.max_length = max_length
        self.max_elements = max_elements

    @property
    def pending(self) -> int:
        """Code points (plus undecoded bytes) held back for the rest of an instruction."""
        return len(self._buf) + len(self._decoder.getstate()[0])

    def feed(self, data: bytes | str) -> str:
        """All instructions completed by *data* and not returned before, as one string."""
        if isinstance(data, str):
            text = data
        else:
            try:
                text = self._decoder.decode(data)
            except UnicodeDecodeError as e:
                raise ProtocolError(f"invalid UTF-8 at byte {e.start} of a chunk") from None
        buf = self._buf + text if self._buf else text
        pos, start, count = self._pos, self._start, self._count
        max_length, max_elements = self.max_length, self.max_elements
        if _scan_in_c is not None:
            done, c_pos, c_start, c_count, ok = _scan_in_c(buf, pos, start, count, max_length,
                                                           max_elements, _MAX_DIGITS)
            if ok:
                return self._keep(buf, done, c_pos, c_start, c_count)
        end = len(buf)
        done = 0            # end of the last complete instruction
        find = buf.find
        while True:
            dot = find(".", pos, pos + _MAX_DIGITS + 1)
            if dot < 0:
                if end - pos > _MAX_DIGITS:
                    head = buf[pos:pos + _MAX_DIGITS + 1]
                    if head.isdigit() and head.isascii():
                        raise ProtocolLimit(f"a length prefix of more than {_MAX_DIGITS} digits")
                    raise ProtocolError(f"expected a length prefix, got {buf[pos:pos + 12]!r}")
                if end > pos and not buf[pos:end].isdigit():
                    raise ProtocolError(f"expected a length prefix, got {buf[pos:end]!r}")
                break
            digits = buf[pos:dot]
            if not digits.isdigit() or not digits.isascii():
                raise ProtocolError(f"expected a length prefix, got {buf[pos:pos + 12]!r}")
            term = dot + 1 + int(digits)
            if term - start >= max_length:
                raise ProtocolLimit(f"instruction longer than {max_length} characters")
            if term >= end:
                break
            count += 1
            if count > max_elements:
                raise ProtocolLimit(f"instruction with more than {max_elements} elements")
            sep = buf[term]
            pos = term + 1
            if sep == ";":
                done = start = pos
                count = 0
            elif sep != ",":
                raise ProtocolError(f"expected ',' or ';' after a value, got {sep[:1]!r}")
        if end - start >= max_length:
            raise ProtocolLimit(f"instruction longer than {max_length} characters")
        return self._keep(buf, done, pos, start, count)

    def _keep(self, buf: str, done: int, pos: int, start: int, count: int) -> str:
        """Hold back what follows the last complete instruction; return the rest."""
        self._buf = buf[done:]
        self._pos, self._start, self._count = pos - done, start - done, count
        return buf[:done] if done else ""


def split(text: str) -> list[str]:
    """Complete instructions text (as from :meth:`Framer.feed`) → raw instructions."""
    out = []
    start = pos = 0
    end = len(text)
    while pos < end:
        dot = text.find(".", pos)
        if dot < 0:
            raise ProtocolError("incomplete instruction")
        try:
            pos = dot + 1 + int(text[pos:dot])
        except ValueError:
            raise ProtocolError(f"expected a length prefix, got {text[pos:pos + 12]!r}") from None
        if pos >= end:
            raise ProtocolError("incomplete instruction")
        sep = text[pos]
        pos += 1
        if sep == ";":
            out.append(text[start:pos])
            start = pos
        elif sep != ",":
            raise ProtocolError(f"expected ',' or ';' after a value, got {sep!r}")
    if start != end:
        raise ProtocolError("incomplete instruction")
    return out


def parse(raw: str) -> list[str]:
    """One raw instruction → its elements, opcode first."""
    elements = []
    pos = 0
    end = len(raw)
    while True:
        dot = raw.find(".", pos, pos + _MAX_DIGITS + 1)
        digits = raw[pos:dot]
        if dot < 0 or not digits.isdigit() or not digits.isascii():
            raise ProtocolError(f"expected a length prefix, got {raw[pos:pos + 12]!r}")
        value_end = dot + 1 + int(digits)
        if value_end >= end:
            raise ProtocolError("incomplete instruction")
        elements.append(raw[dot + 1:value_end])
        sep = raw[value_end]
        pos = value_end + 1
        if sep == ";":
            if pos != end:
                raise ProtocolError("more than one instruction")
            return elements
        if sep != ",":
            raise ProtocolError(f"expected ',' or ';' after a value, got {sep!r}")


def is_internal(raw: str) -> bool:
    """The tunnel's own instructions have an empty opcode: ``0.,4.ping,…;``."""
    return raw.startswith("0.") and raw[2:3] in (",", ";")


class Parser:
    """Framer + parse, for callers that want elements."""

    def __init__(self, max_length: int = MAX_INSTRUCTION_LENGTH,
                 max_elements: int = MAX_ELEMENTS) -> None:
        self._framer = Framer(max_length, max_elements)

    def feed(self, data: bytes | str) -> list[list[str]]:
        text = self._framer.feed(data)
        return [parse(raw) for raw in split(text)] if text else []
