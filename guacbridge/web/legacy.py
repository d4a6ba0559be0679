"""The legacy agent route, for fence agents written against an older console API:

    GET /{host}/skey/{key}/id/{name}/ovirt/pass/{password}/port/{port}/location/{location}

answered ``{"Result": "OK", "Debug": …, "Message": <console url>}``. Off unless
``[legacy] keys`` names a key per location. Keys are compared in constant time; the password
(URL- or base64-encoded, as configured) travels in the path, so the access log redacts it.
The console-creation rate limits apply, with ``legacy:<location>`` as the key's name.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from typing import Any

from ..errors import ConsoleError
from ..limits import Limited, Throttle
from .base import JsonBase

log = logging.getLogger(__name__)

ROUTE = (r"/([^/]+)/skey/([^/]+)/id/([^/]+)/ovirt/pass/([^/]+)/port/([^/]+)"
         r"/location/([^/]+)/?")


class LegacyHandler(JsonBase):
    def initialize(self, create_throttle: Throttle,  # type: ignore[override]
                   **base: Any) -> None:
        super().initialize(**base)
        self.throttle = create_throttle

    def answer(self, status: int, result: str, debug: str, message: str = "") -> None:
        self.set_status(status)
        self.finish(json.dumps({"Result": result, "Debug": debug, "Message": message}))

    async def get(self, host: str, key: str, name: str, password: str, port: str,
                  location: str) -> None:
        settings, throttle = self.config, self.throttle
        try:
            throttle.check_address(self.request.remote_ip)
        except Limited as e:
            return self.limited(e)
        expected = settings.legacy_keys.get(location, "")
        # Unknown location and wrong key look the same, and take the same time.
        if not hmac.compare_digest(key.encode(), (expected or "\0" * 32).encode()) \
                or not expected:
            log.warning("legacy route: key refused for location %r", location[:64])
            return self.answer(403, "ERROR", "key refused")
        try:
            throttle.check_key(f"legacy:{location}")
        except Limited as e:
            return self.limited(e)
        try:
            secret = self._decode(password, settings.legacy_password_encoding)
        except ValueError as e:
            return self.answer(400, "ERROR", str(e))
        if not port.isdigit():
            return self.answer(400, "ERROR", "port must be a number")
        request: dict[str, Any] = {"target": {"agent": "static", "protocol": "vnc",
                                              "hostname": host, "port": int(port),
                                              "password": secret}}
        try:
            reply = await self.consoles.open(request, owner=f"legacy:{location}")
        except ConsoleError as e:
            return self.answer(e.status, "ERROR", e.details)
        log.info("legacy route: console %s for %s in %s", reply["id"], name[:64], location[:64])
        self.answer(200, "OK", f"console {reply['id']} for {name}", reply["url"])

    def limited(self, e: Limited) -> None:
        if e.retry_after_header:
            self.set_header("Retry-After", e.retry_after_header)
        self.answer(429, "ERROR", e.details)

    @staticmethod
    def _decode(value: str, encoding: str) -> str:
        if encoding == "url":
            return value        # Tornado has already percent-decoded path arguments
        try:
            return base64.b64decode(value + "=" * (-len(value) % 4),
                                    altchars=b"-_" if ("-" in value or "_" in value) else None,
                                    validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("the password is not valid base64") from None
