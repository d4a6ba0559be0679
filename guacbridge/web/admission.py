"""Who may open a tunnel, and the guacd connection they get: the tunnel asks here before
its pumps run, and a refusal comes back as :class:`TurnedAway` with the Guacamole status
and the words the browser shows.

Who: a viewer's share, the page's reconnect secret, or a one-time token (the sessions' and
the shares' business; this only maps their refusals). Where to: what ``targets.py`` says a
new connection of the console connects to now (asked of its agent again when the agent
follows, judged by the target policy either way), plus the page's layout and the recording
part; a viewer joins the owner's guacd connection."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import NamedTuple

from ..audit import Client
from ..errors import ConsoleError
from ..grants import Grant, Refused, Target
from ..guacd import Capabilities, GuacdConnection, GuacdError
from ..guacd_pool import GuacdPool
from ..recordings import Expected, RecordingError, Recordings
from ..sessions import Sessions
from ..shares import OwnerAway, Shares, Viewer
from ..status import Status
from ..targets import Targets

log = logging.getLogger(__name__)


class TurnedAway(Exception):
    """The tunnel cannot go on: the browser is told *status* and *message*; *reason*, when
    given, is what the log and the console's history say instead."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class Connecting(NamedTuple):
    """What the owner's new guacd connection is asked for."""
    target: Target                # protocol and guacd's parameters
    recording: Expected | None    # the recording file guacd is to make (None: unrecorded)


# A refusal's HTTP status (the agent's, the policy's) as the Guacamole status the page gets:
# the upstream statuses are the ones the page retries on by itself.
REFUSALS = {403: Status.CLIENT_FORBIDDEN, 400: Status.UPSTREAM_NOT_FOUND,
            404: Status.UPSTREAM_NOT_FOUND, 409: Status.UPSTREAM_NOT_FOUND,
            502: Status.UPSTREAM_ERROR, 504: Status.UPSTREAM_TIMEOUT}


class Admitted(NamedTuple):
    grant: Grant
    viewer: Viewer | None     # set when the tunnel joins through a share
    secret: str | None        # a resume's new reconnect secret, for the page


async def admit(arg: Callable[[str, str], str], shares: Shares, sessions: Sessions,
                tunnel_id: str, client: Client) -> Admitted:
    """The console the tunnel may show, from its query arguments (*arg*: name, default →
    value); TurnedAway when refused."""
    try:
        if arg("share", ""):
            viewer = await shares.start_viewer(arg("console", ""), arg("share", ""), tunnel_id)
            return Admitted(viewer.grant, viewer, None)
        if arg("session", ""):
            resumed = await sessions.resume(arg("console", ""), arg("session", ""), tunnel_id,
                                            client)
            return Admitted(resumed.grant, None, resumed.secret)
        grant = await sessions.start(arg("token", ""), arg("extra", "") or None, tunnel_id,
                                     client)
        return Admitted(grant, None, None)
    except Refused as e:
        log.info("tunnel refused: %s", e.reason)
        raise TurnedAway(Status.CLIENT_UNAUTHORIZED, e.reason) from None
    except OwnerAway as e:
        raise TurnedAway(Status.UPSTREAM_UNAVAILABLE, str(e)) from None
    except ConsoleError as e:
        log.warning("tunnel not opened: %s", e.details)
        if e.status != 503:       # e.g. its secrets do not open: the operator must act
            raise TurnedAway(Status.SERVER_ERROR, "the console's connection details cannot"
                             " be read; the service's log says why") from None
        raise TurnedAway(Status.UPSTREAM_UNAVAILABLE, "the console service cannot reach its"
                         " database; try again shortly") from None


async def target(grant: Grant, layout: str | None, targets: Targets,
                 recordings: Recordings) -> Connecting:
    """The owner's new connection: where to (``Targets.for_connection``), with the page's
    layout and this connection's recording part; TurnedAway when it may not connect."""
    try:
        found = await targets.for_connection(grant)
        params = found.params
        if layout and found.protocol == "rdp":
            params = {**params, "server-layout": layout}
        # guacbridge names this connection's recording part (guacd's own names end at .255)
        params, expected = await asyncio.to_thread(recordings.connection, grant.id, params)
        return Connecting(Target(found.protocol, params), expected)
    except ConsoleError as e:        # the agent or the policy refuses, in words
        raise TurnedAway(REFUSALS.get(e.status, Status.UPSTREAM_UNAVAILABLE),
                         e.details) from None
    except RecordingError as e:      # a million parts: the console cannot be recorded
        raise TurnedAway(Status.RESOURCE_CLOSED, e.details) from None


async def connect(pool: GuacdPool, grant: Grant, viewer: Viewer | None, caps: Capabilities,
                  layout: str | None, timeout: float, targets: Targets,
                  recordings: Recordings) -> tuple[GuacdConnection, Expected | None]:
    """A guacd connection through *pool*: the owner's a new one (and the recording file
    guacd is to make for it), a viewer joins the owner's; TurnedAway when refused or guacd
    says no."""
    try:
        if viewer is not None:
            return await pool.join(viewer.address, viewer.connection_id, viewer.params, caps,
                                   timeout), None
        going = await target(grant, layout, targets, recordings)
        return await pool.connect(going.target.protocol, going.target.params, caps,
                                  timeout), going.recording
    except GuacdError as e:
        log.warning("console %s: guacd handshake failed: %s", grant.id, e)
        if viewer is not None:   # guacd 1.3.0 just hangs up on a connection gone
            raise TurnedAway(Status.UPSTREAM_UNAVAILABLE, OwnerAway.MESSAGE, str(e)) from None
        raise TurnedAway(e.status, e.message, f"guacd: {e.message}") from None
