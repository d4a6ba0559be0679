"""The audit endpoints: ``GET /api/v1/sessions`` (consoles in use now, on any instance) and
``GET /api/v1/consoles/{id}/events`` (a console's trail). Thin, like ``api.py``."""
from __future__ import annotations

from .api import JsonHandler, answers


class SessionsHandler(JsonHandler):
    @answers
    async def get(self) -> None:
        self.api_key()
        self.send(await self.consoles.sessions())


class EventsHandler(JsonHandler):
    @answers
    async def get(self, console_id: str) -> None:
        self.api_key()
        self.send(await self.consoles.events(console_id))
