"""The audit endpoints: ``GET /api/v1/sessions`` (consoles in use now, on any instance) and
``GET /api/v1/consoles/{id}/events`` (a console's trail). Thin, like ``api.py``; both need the
``read`` scope, and a key without ``admin`` sees only the consoles it opened."""
from __future__ import annotations

from .api import JsonHandler, answers


class SessionsHandler(JsonHandler):
    @answers
    async def get(self) -> None:
        key = self.api_key("read")
        self.send(await self.consoles.sessions(None if key.admin else key.name))


class EventsHandler(JsonHandler):
    @answers
    async def get(self, console_id: str) -> None:
        await self.owned(console_id, self.api_key("read"))
        self.send(await self.consoles.history(console_id))
