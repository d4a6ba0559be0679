"""The REST API (``/api/v1/consoles``, its OpenAPI document) and the operator endpoints
(``/healthz``, ``/readyz``, ``/metrics``). Thin: every decision is the core's.

Each call needs an API key holding its scope (``create``, ``read``, ``extend``, ``revoke``,
``power``; ``admin`` holds all) and acts only on the key's own consoles unless the key is an
admin; see
:meth:`JsonHandler.api_key` and :meth:`JsonHandler.owned`. Failures answer
``{"result": false, "details": …}`` with the fitting HTTP status, never a traceback and never
a secret; see :meth:`JsonHandler.write_error`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources as importlib_resources
from typing import Any

from .. import apikeys
from ..apikeys import ApiKey
from ..errors import ConsoleError
from ..guacd_pool import GuacdPool
from ..limits import Limited, Throttle
from ..metrics import CONTENT_TYPE
from ..power import Power
from ..screenshots import Screenshots
from ..serial import PROTOCOL as SERIAL
from ..serial_bridge import Bridges
from .base import JsonBase

log = logging.getLogger(__name__)
OPENAPI = importlib_resources.files("guacbridge").joinpath("schemas/openapi.json").read_bytes()


def answers(method: Callable[..., Awaitable[None] | None]) -> Callable[..., Awaitable[None]]:
    """Turn the core's ConsoleError into the JSON error reply: an answer, not a crash."""
    @functools.wraps(method)
    async def wrapper(self: JsonHandler, *args: Any) -> None:
        try:
            result = method(self, *args)
            if result is not None:
                await result
        except ConsoleError as e:
            self.fail(e.status, e.details)
        except Limited as e:
            if e.retry_after_header:
                self.set_header("Retry-After", e.retry_after_header)
            self.fail(429, e.details)
    return wrapper


MAX_JSON_DEPTH = 32      # objects and arrays within each other in a request body


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest in *value* (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((x, level + 1) for x in (item.values() if isinstance(item, dict)
                                                   else item))
    return deepest


class JsonHandler(JsonBase):
    """The API's endpoints; those that need more than the base take it in their own
    ``initialize``."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("X-Content-Type-Options", "nosniff")

    def send(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def fail(self, status: int, details: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"result": False, "details": details}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own errors (bad method, oversized body, crashes), in our JSON shape."""
        details = self._reason if status_code < 500 else "internal error; see the server log"
        self.finish(json.dumps({"result": False, "details": details}))

    def json_body(self) -> Any:
        """The body, parsed. Nesting is bounded: no request needs more than a few levels,
        and a body of 100,000 ``[`` would otherwise exhaust the parser's recursion (a 500)."""
        if not self.request.body:
            return {}
        too_deep = f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels"
        try:
            body = json.loads(self.request.body)
        except RecursionError:
            raise ConsoleError(400, too_deep) from None
        except (ValueError, UnicodeDecodeError):
            raise ConsoleError(400, "the request body is not valid JSON") from None
        if json_depth(body) > MAX_JSON_DEPTH:
            raise ConsoleError(400, too_deep)
        return body

    def json_object(self) -> dict[str, Any]:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ConsoleError(400, "the request body must be a JSON object")
        return body

    def api_key(self, scope: str) -> ApiKey:
        """The API key presented as a bearer token, if it holds *scope*: 401 when there is
        no valid key, 403 when the key is valid but lacks the scope (RFC 6750 section 3)."""
        keys = self.config.api_keys
        scheme, _, secret = self.request.headers.get("Authorization", "").partition(" ")
        if not keys:
            raise ConsoleError(401, "no API keys are configured: set GUACBRIDGE_API_KEYS")
        if scheme.lower() != "bearer" or not secret:
            self.set_header("WWW-Authenticate", 'Bearer realm="guacbridge"')
            raise ConsoleError(401, "an API key is required: Authorization: Bearer <key>")
        key = apikeys.authenticate(keys, secret.strip())
        if key is None:
            self.set_header("WWW-Authenticate", 'Bearer realm="guacbridge", error="invalid_token"')
            raise ConsoleError(401, "the API key is not valid")
        if not key.allows(scope):
            self.set_header("WWW-Authenticate", 'Bearer realm="guacbridge",'
                            f' error="insufficient_scope", scope="{scope}"')
            held = ", ".join(sorted(key.scopes))
            raise ConsoleError(403, f"API key {key.name} lacks the scope {scope!r} needed to"
                                    f" {_NEEDS[scope]}; its scopes: {held}")
        return key

    async def owned(self, console_id: str, key: ApiKey) -> dict[str, Any]:
        """The console if *key* may act on it: one it opened, or any with the admin scope.
        Another owner's console answers like one that does not exist."""
        reply = await self.consoles.get(console_id)
        if not key.admin and reply["owner"] != key.name:
            raise ConsoleError(404, f"no console with id {console_id}")
        return reply


_NEEDS = {"create": "open consoles", "read": "read consoles", "extend": "extend consoles",
          "revoke": "close consoles",
          "power": "switch a console's server on or off", "admin": "act on every owner's consoles"}


class ConsolesHandler(JsonHandler):
    def initialize(self, create_throttle: Throttle,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.throttle = create_throttle

    @answers
    async def post(self) -> None:
        throttle = self.throttle
        throttle.check_address(self.request.remote_ip)    # before the key: guesses count
        key = self.api_key("create")
        throttle.check_key(key.name)
        reply = await self.consoles.open(self.json_body(), key.name)
        self.set_header("Location", f"{self.request.path}/{reply['id']}")
        self.send(reply, 201)


class ConsoleHandler(JsonHandler):
    @answers
    async def get(self, console_id: str) -> None:
        self.send(await self.owned(console_id, self.api_key("read")))

    @answers
    async def delete(self, console_id: str) -> None:
        key = self.api_key("revoke")
        await self.owned(console_id, key)
        self.send(await self.consoles.close(console_id, f"closed by API key {key.name}"))


class ExtendHandler(JsonHandler):
    @answers
    async def post(self, console_id: str) -> None:
        await self.owned(console_id, self.api_key("extend"))
        body = self.json_object()
        seconds = body.get("seconds", self.config.duration)
        self.send(await self.consoles.extend(console_id, seconds))


class PowerHandler(JsonHandler):
    """A console's target power: its state and the actions offered (GET), one pressed
    (POST, 202: the agent took it; the server changes state in its own time). Only for a
    console opened with ``"power": true``; any other answers 404."""

    def initialize(self, power: Power, **base: Any) -> None:  # type: ignore[override]
        super().initialize(**base)
        self.power = power

    @answers
    async def get(self, console_id: str) -> None:
        await self.owned(console_id, self.api_key("power"))
        self.send(await self.power.state(console_id))

    @answers
    async def post(self, console_id: str) -> None:
        key = self.api_key("power")
        await self.owned(console_id, key)
        body = self.json_object()
        self.send(await self.power.act(console_id, body.get("action"),
                                       by=f"API key {key.name}"), 202)


MAX_SCREENSHOT_WIDTH = 8192


class ScreenshotHandler(JsonHandler):
    """The console's screen now as a PNG (screenshots.py): joins the owner's connection
    read-only while there is one, else connects anew without using the console's token."""

    def initialize(self, screenshots: Screenshots,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.screenshots = screenshots

    @answers
    async def get(self, console_id: str) -> None:
        key = self.api_key("read")
        await self.owned(console_id, key)
        width = self.width()
        grant = await self.consoles.current(console_id)
        if grant is None:
            raise ConsoleError(404, f"no console with id {console_id}")
        png = await self.screenshots.take(grant, width, by=f"API key {key.name}")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "no-store")
        self.finish(png)

    def width(self) -> int | None:
        text = self.get_query_argument("width", None)
        if text is None or text == "":
            return None
        if not text.isdigit() or not 1 <= int(text) <= MAX_SCREENSHOT_WIDTH:
            raise ConsoleError(400, f"width must be a whole number of pixels from 1 to"
                                    f" {MAX_SCREENSHOT_WIDTH}, not {text[:20]!r}")
        return int(text)


MAX_OUTPUT_LINES = 100000


class OutputHandler(JsonHandler):
    """A serial console's last output (serial_bridge.py's ring), like nova's console
    output: ``{"output": text}``, the last ``length`` lines when given."""

    def initialize(self, serial: Bridges,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.serial = serial

    @answers
    async def get(self, console_id: str) -> None:
        reply = await self.owned(console_id, self.api_key("read"))
        protocol = reply["target"]["protocol"]
        if protocol != SERIAL:
            raise ConsoleError(409, f"console {console_id} is a {protocol} console: only"
                                    " serial consoles keep their output")
        if reply["state"] in ("closed", "expired"):
            raise ConsoleError(409, f"console {console_id} has {reply['state']}: its output"
                                    " is kept only while it lives")
        length = self.length()
        ring = self.serial.output(console_id)
        self.set_header("Cache-Control", "no-store")
        self.send({"result": True, "details": None, "id": console_id,
                   "output": ring.text(length) if ring is not None else ""})

    def length(self) -> int | None:
        text = self.get_query_argument("length", None)
        if text is None or text == "":
            return None
        if not text.isdigit() or int(text) > MAX_OUTPUT_LINES:
            raise ConsoleError(400, f"length must be a whole number of lines from 0 to"
                                    f" {MAX_OUTPUT_LINES}, not {text[:20]!r}")
        return int(text)


class HealthHandler(JsonHandler):
    """Liveness: cheap, touches nothing."""

    def get(self) -> None:
        self.send({"status": "ok"})


class ReadyHandler(JsonHandler):
    """Readiness: guacd, the databases and the broker answer; each guacd of the pool."""

    def initialize(self,  # type: ignore[override]
                   readiness: Mapping[str, Callable[[], Awaitable[str | None]]],
                   pool: GuacdPool, **base: Any) -> None:
        super().initialize(**base)
        self.readiness = readiness
        self.pool = pool

    async def get(self) -> None:
        checks = dict(self.readiness)
        results = await asyncio.gather(*(check() for check in checks.values()),
                                       return_exceptions=True)
        report = {name: "ok" if result is None else str(result)
                  for name, result in zip(checks, results, strict=True)}
        ready = all(value == "ok" for value in report.values())
        self.send({"status": "ready" if ready else "not ready", "checks": report,
                   "guacd": self.pool.status()}, 200 if ready else 503)


class OpenApiHandler(JsonHandler):
    """The API's OpenAPI 3 document (guacbridge/schemas/openapi.json)."""

    def get(self) -> None:
        self.finish(OPENAPI)


class MetricsHandler(JsonHandler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.metrics.render())


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        self.fail(404, f"no such resource: {self.request.path}")
