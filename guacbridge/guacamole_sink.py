"""The guacamole sink's side of a console: its connection in Guacamole's database is written
when the console opens and removed when the console ends (closed, expired, or stuck
provisioning after a crash). Both databases are written apart, so each step is idempotent and
the connection carries the console's id: whatever a crash leaves half-done, the next
:meth:`GuacamoleSink.clean` finishes."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from .errors import ConsoleError
from .grants import Grant, GrantStore
from .store import call
from .store.guacamole_db import GuacamoleDb, SinkRefused
from .store.sql import StoreUnavailable

log = logging.getLogger(__name__)

PROVISIONING_STALE = 60.0   # seconds: a console still provisioning after this has crashed


class GuacamoleSink:
    def __init__(self, db: GuacamoleDb, store: GrantStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.store = store
        self.clock = clock

    async def provision(self, grant: Grant, name: str) -> Grant:
        """Write the Guacamole connection; on any failure nothing stays behind."""
        assert grant.user is not None
        try:
            connection_id = await asyncio.to_thread(
                self.db.create_connection, grant.id, name, grant.target.protocol,
                grant.target.params, grant.user)
        except BaseException as e:
            # The connection's transaction rolled back: forget the grant too, so that
            # nothing is left and a retried job can make the console afresh.
            await call(self.store.delete, grant.id)
            if isinstance(e, SinkRefused):
                raise ConsoleError(e.status, e.details) from None
            if isinstance(e, StoreUnavailable):
                raise ConsoleError(503, f"Guacamole's database is unavailable: {e}") from None
            log.exception("console %s: writing the Guacamole connection failed", grant.id)
            raise ConsoleError(502, "writing the connection into Guacamole's database failed;"
                                    " see the server log") from None
        await call(self.store.set_sink, grant.id, str(connection_id), "ready")
        return dataclasses.replace(grant, sink_ref=str(connection_id), sink_state="ready")

    async def clean(self) -> None:
        """Remove the connections of closed consoles, and of consoles whose provisioning
        never finished. Idempotent, so several instances may run it at once."""
        now = self.clock()
        for grant in await call(self.store.sinks_to_clean, now, PROVISIONING_STALE):
            if grant.closed_at is None:
                await call(self.store.close, grant.id, "provisioning did not finish", now)
            await call(self.db.remove_connection, grant.id)
            await call(self.store.set_sink, grant.id, None, "removed")
            log.info("console %s: its Guacamole connection was removed", grant.id)
