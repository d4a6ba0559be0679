"""A console's screen as it is now, as a PNG (``GET /api/v1/consoles/{id}/screenshot``).

While the console's owner holds a guacd connection, the screenshot joins it as a read-only
user (``select $<connection id>`` with ``read-only``, as a share's viewer does): it sees what
the owner sees and cannot type into it. Otherwise it opens a guacd connection of its own to
the console's target, as ``Targets.for_connection`` says now (the agent asked again when it
follows, the target policy judging), without the one-time token: the token stays unused
for the page it was made for. Such a connection is not recorded and not a session.

What guacd sends is drawn by :class:`guacbridge.screen.Screen` until the first complete
frame, and a little longer while drawing goes on (a terminal draws its empty screen first
and the login's text a moment later), within ``screenshots.timeout``: no complete frame by
then is a 504 whose details say so.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from .errors import ConsoleError
from .events import ConsoleEvents
from .grants import Grant
from .guacd import Capabilities, GuacdConnection, GuacdError
from .guacd_pool import GuacdPool
from .protocol import encode
from .screen import Screen
from .status import Status
from .store import call
from .store.shares import ShareStore
from .targets import Targets

log = logging.getLogger(__name__)

SETTLE = 0.3         # seconds without drawing after a complete frame: the screen is shown
SETTLE_LOGIN = 0.6   # the same for a terminal's login, whose output comes in pieces
MORE_AT_MOST = 2.0   # seconds past the first complete frame, however busy the screen
CAPS = Capabilities(name="guacbridge screenshot")
TERMINALS = frozenset({"ssh", "telnet"})     # guacd draws their terminal before the login
# Drawing instructions: a frame that holds none of them changed nothing.
DRAWING = frozenset({"img", "blob", "end", "png", "copy", "transfer", "rect", "cfill",
                     "lfill", "size", "move", "shade", "dispose"})


class Screenshots:
    def __init__(self, pool: GuacdPool, targets: Targets, live: ShareStore,
                 events: ConsoleEvents, timeout: float) -> None:
        self.pool = pool
        self.targets = targets
        self.live = live
        self.events = events
        self.timeout = timeout

    async def take(self, grant: Grant, width: int | None = None, by: str = "") -> bytes:
        """The console's screen now as a PNG, *width* pixels wide at most. ConsoleError:
        409 for a console that has ended, the target's refusal, 502 when guacd fails, 504
        when no complete frame came within the timeout."""
        if grant.closed_at is not None:
            raise ConsoleError(409, f"console {grant.id} has ended"
                                    f" ({grant.close_reason or 'closed'}): nothing to show")
        deadline = time.monotonic() + self.timeout
        conn, joined = await self._connect(grant, deadline)
        # A new terminal's first frame is its empty screen: wait for the login's output,
        # which comes in pieces (the message of the day, then the shell's prompt).
        login = not joined and grant.target.protocol in TERMINALS
        lost = False
        try:
            png = await self._frame(conn, deadline, width, *((2, SETTLE_LOGIN) if login
                                                             else (1, SETTLE)))
        except (OSError, EOFError) as e:
            lost = True
            raise ConsoleError(502, f"guacd ended the screenshot's connection before a"
                                    f" complete frame ({type(e).__name__})") from None
        finally:
            self.pool.release(conn, lost)
        await self.events.record(grant.id, "screenshot", by=by, joined=joined,
                                 width=width, bytes=len(png))
        return png

    async def _connect(self, grant: Grant, deadline: float) -> tuple[GuacdConnection, bool]:
        """The owner's connection joined read-only if there is one, else a new one."""
        live = await call(self.live.live, grant.id)
        if live is not None:
            try:
                conn = await self.pool.join(live.address, live.connection_id,
                                            {"read-only": "true"}, CAPS,
                                            max(0.1, deadline - time.monotonic()))
                return conn, True
            except GuacdError as e:   # the owner's connection ended just now: a new one
                log.info("console %s: screenshot could not join the owner's connection"
                         " (%s); connecting anew", grant.id, e.message)
        target = await self.targets.for_connection(grant)
        try:
            params = {**unrecorded(target.params), "read-only": "true"}
            conn = await self.pool.connect(target.protocol, params, CAPS,
                                           max(0.1, deadline - time.monotonic()))
        except GuacdError as e:
            raise ConsoleError(504 if e.status == Status.UPSTREAM_TIMEOUT else 502,
                               f"guacd could not connect for the screenshot: {e.message}"
                               ) from None
        return conn, False

    async def _frame(self, conn: GuacdConnection, deadline: float, width: int | None,
                     frames: int, settle: float) -> bytes:
        """The screen once *frames* complete frames that drew came and then nothing was
        drawn for *settle* seconds (or at the deadline, with fewer); 504 when not even one
        came."""
        screen = Screen()
        drawing_frames = 0
        framed_at: float | None = None       # when the frames asked for had come
        drawn_at = 0.0                       # when the latest frame that drew anything came
        drew = False                         # drawing since the last sync
        while True:
            now = time.monotonic()
            if framed_at is not None:
                wait = min(drawn_at + settle, framed_at + MORE_AT_MOST, deadline) - now
            else:
                wait = deadline - now
            if wait <= 0:
                if not drawing_frames:
                    raise ConsoleError(504, f"no complete frame of the console's screen came"
                                            f" within {self.timeout:g} s (screenshots.timeout):"
                                            " guacd or the console's server is slow or"
                                            " not drawing; try again")
                return screen.png(width)
            try:
                batch = await asyncio.wait_for(conn.instructions(), wait)
            except TimeoutError:
                continue
            replies = []
            for opcode, *args in batch:
                if opcode == "sync" and args:
                    replies.append(encode("sync", args[0]))    # guacd paces on these
                elif opcode == "nop":
                    replies.append(encode("nop"))
                elif opcode == "error":
                    raise ConsoleError(502, "guacd refused the screenshot's connection: "
                                            f"{args[0] if args else 'error'}")
                elif opcode == "required":       # guacd would wait for the answer forever
                    raise ConsoleError(409, "the console's server asks for credentials the"
                                            f" console was not given ({', '.join(args)}):"
                                            " a screenshot has no one to ask; it works"
                                            " while the console's page is connected")
                elif opcode == "disconnect":
                    raise EOFError("guacd disconnected")
                drew = drew or opcode in DRAWING
                if screen.apply(opcode, args):
                    if drew or not drawing_frames:
                        drawing_frames += 1
                        drawn_at = time.monotonic()
                    if framed_at is None and drawing_frames >= frames:
                        framed_at = drawn_at
                    drew = False
            if replies:
                conn.writer.write("".join(replies).encode())


def unrecorded(params: Mapping[str, str]) -> dict[str, str]:
    """A target's guacd parameters without recording or typescript: a screenshot's own
    connection is not a session, and must not become a part of the console's recording."""
    return {k: v for k, v in params.items()
            if not k.startswith(("recording-", "typescript-", "create-recording",
                                 "create-typescript"))}
