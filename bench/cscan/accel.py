"""Framer.feed on the prototype C scanner; the pure-Python feed for anything unusual, so
that errors and their messages stay exactly guacbridge's."""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _guacscan  # noqa: E402

from guacbridge import protocol  # noqa: E402

_python_feed = protocol.Framer.feed
_scan = _guacscan.scan


def feed(self: protocol.Framer, data: bytes | str) -> str:
    state = None
    if isinstance(data, str):
        text = data
    else:
        state = self._decoder.getstate()
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError:
            self._decoder.setstate(state)
            return _python_feed(self, data)
    buf = self._buf + text if self._buf else text
    done, pos, start, count, ok = _scan(buf, self._pos, self._start, self._count,
                                        self.max_length, self.max_elements)
    if not ok:                      # malformed or over a limit: let Python say which
        if state is not None:
            self._decoder.setstate(state)
        return _python_feed(self, data)
    self._buf = buf[done:]
    self._pos, self._start, self._count = pos - done, start - done, count
    return buf[:done] if done else ""


def install() -> None:
    protocol.Framer.feed = feed
