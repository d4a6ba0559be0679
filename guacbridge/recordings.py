"""Session recordings: the guacd parameters that make guacd record a console, and the files
it writes — which belong to a console, how big and how long they are, and their removal once
the retention has passed.

guacd writes the recordings (``recording-path``/``recording-name``), in Guacamole's own
protocol, into a directory that guacbridge reads too (``recordings.dir``; when guacd runs
elsewhere, a volume both mount, named for guacd by ``recordings.guacd_dir``). Only guacbridge
sets these parameters, never a console request (see ``parameters.py``). A console's files are
``<console id>``, then ``<console id>.1``, ``.2``… for each later guacd connection (a reconnect).
guacbridge names each connection's part itself (:meth:`Recordings.connection`): guacd's own
suffixes stop at ``.255``, after which guacd records nothing and the session goes on.

With ``policy = "always"`` a console must not be seen unrecorded: the tunnel holds back the
first of guacd's messages that shows anything of the desktop (:func:`shows_desktop`: the
first frame's sync, or an image, a fill, a copy, a stream's data before it) until the file
guacd should have made is there (:meth:`Recordings.made`), and ends the connection when it
does not appear.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import pathlib
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from .config import Settings

log = logging.getLogger(__name__)

# What marks a console as recorded in its stored guacd parameters.
PATH_PARAM = "recording-path"
_SYNC = re.compile(rb"4\.sync,\d{1,2}\.(\d{1,20})[,;]")
_PROBE = 256 * 1024      # bytes read at each end of a file to find its first and last sync
MAX_PART = 999_999        # parts a console may have (the API's routes take up to 6 digits)
_PART = re.compile(r"^(?:\.(\d{1,6}))?$")
_NAME = re.compile(r"[0-9a-f-]{36}(\.\d{1,6})?")


class RecordingError(Exception):
    """Why a recording cannot be had; ``status`` is the HTTP status for the API."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


@dataclasses.dataclass(frozen=True)
class RecordingFile:
    path: pathlib.Path
    part: int                 # 0 for the first guacd connection, then 1, 2…
    size: int
    modified: float
    # guacd's ``sync`` timestamps (seconds) of the first and last frame: guacd 1.3.0 counts
    # them from its own clock, not the epoch, so only their difference means something.
    first_sync: float | None
    last_sync: float | None

    @property
    def duration(self) -> float:
        if self.first_sync is None or self.last_sync is None:
            return 0.0
        return max(0.0, self.last_sync - self.first_sync)

    def public(self) -> dict[str, Any]:
        modified = datetime.datetime.fromtimestamp(self.modified, datetime.UTC)
        return {"part": self.part, "size": self.size, "duration": round(self.duration, 3),
                "modified_at": modified.isoformat(timespec="seconds").replace("+00:00", "Z")}


@dataclasses.dataclass(frozen=True)
class Expected:
    """The file guacd is to make for one guacd connection of a recorded console."""
    console_id: str
    part: int
    name: str                 # guacd's recording-name for this connection
    path: pathlib.Path        # where guacbridge sees that file
    enforced: bool            # policy = always: without the file the connection ends
    timeout: float            # how long to wait for it at the first frame


# What the browser is told when an always-recorded connection got no file (fewer words than
# Recordings.unmade's: paths are the operator's business).
UNRECORDED = ("This console must be recorded and its recording could not be created: guacd"
              " made no recording file, so the console was closed before it was shown. The"
              " service's log says why.")


# What in guacd's stream carries anything of the desktop: a frame's end, pixels (images and
# their stream data, fills, copies, the cursor), or other streams' data (audio, clipboard,
# files). guacd creates a connection's recording before it draws, so checking at the first
# of these is as sound as at the first sync, and nothing of the desktop goes out before it
# (a large first frame spans several reads: its images came before its sync).
_SHOWS = ("4.sync,", "3.img,", "4.blob,", "3.png,", "4.jpeg,", "5.cfill,", "5.lfill,",
          "4.copy,", "8.transfer,", "6.cursor,", "5.audio,", "5.video,", "9.clipboard,",
          "4.file,", "4.pipe,")


def shows_desktop(text: str) -> bool:
    """Whether guacd's *text* (whole instructions) may show something of the desktop; a
    value that merely contains such a name counts too (the check comes early, not late)."""
    return any(opcode in text for opcode in _SHOWS)


def part_name(console_id: str, part: int) -> str:
    """The file name of a console's *part*: ``<id>`` for the first, then ``<id>.<part>``."""
    return console_id if part == 0 else f"{console_id}.{part}"


class Recordings:
    def __init__(self, settings: Settings) -> None:
        self.dir = settings.recordings_dir
        self.guacd_dir = settings.recordings_guacd_dir or (str(self.dir) if self.dir else "")
        self.policy = settings.recordings_policy
        self.retention = settings.recordings_retention
        self.verify_timeout = settings.recordings_verify_timeout

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def wanted(self, asked: Any) -> tuple[bool, bool]:
        """(record?, include keys?) for a request's ``recording`` field: true, false, or
        ``{"keys": true}``; ValueError with a message for the caller otherwise."""
        keys = False
        if isinstance(asked, Mapping):
            unknown = sorted(set(asked) - {"keys"})
            if unknown:
                raise ValueError(f"unknown recording option(s): {', '.join(unknown)};"
                                 " the only one is keys")
            keys = asked.get("keys", False)
            if not isinstance(keys, bool):
                raise ValueError("recording.keys must be true or false")
            asked = True
        elif asked is not None and not isinstance(asked, bool):
            raise ValueError('recording must be true, false or {"keys": true}')
        record = bool(asked) or self.policy == "always"
        if record and not self.enabled:
            raise ValueError("recording is not configured on this service"
                             " (set recordings.dir)")
        return record, keys and record

    def params(self, console_id: str, keys: bool) -> dict[str, str]:
        """guacd's parameters for recording this console; output and mouse are always kept
        (the player needs them), keys only when asked for."""
        return {PATH_PARAM: self.guacd_dir, "recording-name": console_id,
                "create-recording-path": "true",
                "recording-include-keys": "true" if keys else ""}

    def connection(self, console_id: str,
                   params: Mapping[str, str]) -> tuple[dict[str, str], Expected | None]:
        """guacd's parameters for one new guacd connection of the console, and the file it
        is to make (None when the console is not recorded, or not where guacbridge looks).

        guacbridge names the part itself, one past the highest part there: left to guacd,
        every connection asks for ``<id>`` and guacd adds ``.1`` … ``.255`` to avoid the
        files already there, then fails, and the console runs unrecorded. Blocking: it
        lists the directory."""
        if self.dir is None:       # recording is off here (now)
            return dict(params), None
        if PATH_PARAM not in params:
            if self.policy != "always":
                return dict(params), None
            # made before policy became always: recorded from now on all the same
            params = {**params, **self.params(console_id, False)}
        parts = [f.part for f in self._parts(console_id)]
        part = max(parts) + 1 if parts else 0
        if part > MAX_PART:
            raise RecordingError(409, f"console {console_id} has {MAX_PART} recording parts"
                                      " already; open a new console")
        name = part_name(console_id, part)
        return ({**params, "recording-name": name},
                Expected(console_id, part, name, self.dir / name,
                         self.policy == "always",
                         self.verify_timeout if self.policy == "always" else 0.0))

    def made(self, expected: Expected) -> bool:
        """Whether guacd's file for this connection is there. A listing, not only a stat:
        a shared volume (NFS) may cache that a name was missing. Blocking."""
        if expected.path.exists():
            return True
        return any(entry.name == expected.name for entry in self._entries())

    async def wait_made(self, expected: Expected) -> bool:
        """:meth:`made`, asked again every 50 ms until the expected file's timeout."""
        deadline = time.monotonic() + expected.timeout
        while not await asyncio.to_thread(self.made, expected):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def unmade(self, expected: Expected) -> str:
        """Why a connection's recording is missing, for the log and the console's history
        (the browser gets fewer words: paths are the operator's business)."""
        if str(self.dir) == self.guacd_dir:
            where = f"{self.dir}"
        else:
            where = f"{self.guacd_dir} (as guacd sees it; {self.dir} here)"
        return (f"recording could not be created: guacd made no file {expected.name} in"
                f" {where} within {expected.timeout:g} s of the first frame; guacd's log says"
                " why (\"Creation of recording failed\"): the directory must be writable by"
                " guacd and shared with guacbridge")

    async def verify(self, expected: Expected) -> str | None:
        """At a connection's first frame, before it reaches the browser: is guacd recording
        it? None when it is, or when the console was only asked to be recorded (it goes on,
        logged); else why not, and the connection must end (policy always) with
        :data:`UNRECORDED` for the browser, never the desktop."""
        if await self.wait_made(expected):
            return None
        why = self.unmade(expected)
        if not expected.enforced:
            log.warning("console %s: %s; it goes on unrecorded (recordings.policy = request)",
                        expected.console_id, why)
            return None
        log.error("console %s: %s; the connection ends (recordings.policy = always)",
                  expected.console_id, why)
        return why

    def prepare(self) -> None:
        """Make the directory if it is missing (a fresh volume); /readyz tells if we can't."""
        if self.dir is not None:
            try:
                self.dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as e:
                log.warning("the recordings directory %s cannot be made: %s", self.dir,
                            e.strerror)

    def check(self) -> str | None:
        """For /readyz: None when the directory can be read, else why not."""
        if self.dir is None:
            return None
        if not self.dir.is_dir():
            return (f"the recordings directory {self.dir} does not exist; create it (shared"
                    " with guacd) or unset recordings.dir")
        if not os.access(self.dir, os.R_OK | os.X_OK | os.W_OK):
            return f"the recordings directory {self.dir} is not readable and writable by us"
        return None

    def _entries(self) -> list[os.DirEntry[str]]:
        """What the directory holds now; nothing when recording is off or it can't be read."""
        if self.dir is None:
            return []
        try:
            return list(os.scandir(self.dir))
        except OSError:
            return []

    def _parts(self, console_id: str) -> list[_Part]:
        """This console's files by name, in no order."""
        if not re.fullmatch(r"[0-9a-f-]{36}", console_id):
            return []
        found = []
        for entry in self._entries():
            if not entry.name.startswith(console_id):
                continue
            match = _PART.match(entry.name[len(console_id):])
            if match and entry.is_file():
                found.append(_Part(entry, int(match[1] or 0)))
        return found

    def files(self, console_id: str) -> list[RecordingFile]:
        """This console's recording files, oldest first; [] if there are none (yet)."""
        found = []
        for entry, part in self._parts(console_id):
            stat = entry.stat()
            first, last = _sync_span(pathlib.Path(entry.path), stat.st_size)
            found.append(RecordingFile(pathlib.Path(entry.path), part,
                                       stat.st_size, stat.st_mtime, first, last))
        return sorted(found, key=lambda f: f.part)

    def describe(self, console_id: str, recorded: bool, started: bool) -> dict[str, Any]:
        """What the API answers about a console's recording; RecordingError says why there
        is none, in words that tell an operator what to fix."""
        files = self.files(console_id)
        if not recorded and not files:      # files: made before policy became always
            raise RecordingError(404, f"console {console_id} was not recorded; ask for"
                                      ' "recording": true when opening a console')
        if not files:
            if not started:
                raise RecordingError(404, f"console {console_id} has not been used yet:"
                                          " its recording starts with its session")
            raise RecordingError(404, self.missing(console_id))
        return {"files": [f.public() for f in files], "size": sum(f.size for f in files),
                "duration": round(sum(f.duration for f in files), 3)}

    def missing(self, console_id: str) -> str:
        if self.dir is None:
            return "recording is not configured on this service (recordings.dir is unset)"
        if self.dir.is_dir() and str(self.dir) == self.guacd_dir:
            where = f"{self.dir}"
        else:
            where = f"{self.guacd_dir} (as guacd sees it), {self.dir} here"
        return (f"no recording of console {console_id} is in {where}: it was removed after"
                " the retention, or guacd writes it where guacbridge does not see it; guacd"
                " and guacbridge must share that directory (see docs/recording.rst, \"guacd"
                " on another host\")")

    def file(self, console_id: str, part: int) -> RecordingFile:
        for f in self.files(console_id):
            if f.part == part:
                return f
        raise RecordingError(404, f"console {console_id} has no recording part {part}")

    def path(self, console_id: str, part: int) -> pathlib.Path:
        """Where a part's file is, without reading it (:meth:`file` measures it too)."""
        for entry, number in self._parts(console_id):
            if number == part:
                return pathlib.Path(entry.path)
        raise RecordingError(404, f"console {console_id} has no recording part {part}")

    def expired(self, now: float | None = None) -> list[pathlib.Path]:
        """Files last written longer than the retention ago."""
        limit = (time.time() if now is None else now) - self.retention
        old = []
        for entry in self._entries():
            if _NAME.fullmatch(entry.name) and entry.is_file() \
                    and entry.stat().st_mtime < limit:
                old.append(pathlib.Path(entry.path))
        return old

    def remove_expired(self, now: float | None = None) -> list[tuple[str, str]]:
        """Delete recordings past the retention; (console id, file name) of each removed."""
        removed = []
        for path in self.expired(now):
            try:
                path.unlink()
            except FileNotFoundError:
                continue           # another instance removed it first
            except OSError as e:
                log.warning("recording %s could not be removed: %s", path.name, e.strerror)
                continue
            removed.append((path.name[:36], path.name))
            log.info("recording %s removed after the retention (%d s)", path.name,
                     self.retention)
        return removed


class _Part(NamedTuple):
    entry: os.DirEntry[str]
    part: int


def _sync_span(path: pathlib.Path, size: int) -> tuple[float | None, float | None]:
    """The first and last ``sync`` timestamps of a recording, in seconds."""
    try:
        with path.open("rb") as f:
            head = f.read(_PROBE)
            if size > _PROBE:
                f.seek(max(_PROBE, size - _PROBE))
                tail = f.read(_PROBE)
            else:
                tail = head
    except OSError:
        return None, None
    first = _SYNC.search(head)
    if first is None:
        return None, None
    last = _SYNC.findall(tail)[-1:] or [first[1]]      # the tail's last sync, if any
    return int(first[1]) / 1000.0, int(last[0]) / 1000.0
