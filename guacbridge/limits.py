"""Limits on how fast and how much: token buckets for console creation and tunnel connects,
and caps on the live consoles of one owner and of one target.

Both are kept in this process's memory. With several instances behind a load balancer each
instance counts for itself (so the effective limit is the sum), and a restart starts the
counts afresh; that is the price of needing no shared state for them.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable
from typing import Any

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*(s|sec|second|m|min|minute|h|hour)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0,
          "minute": 60.0, "h": 3600.0, "hour": 3600.0}


@dataclasses.dataclass(frozen=True)
class Rate:
    """*count* events per *per* seconds, in bursts of up to *count*."""
    count: int
    per: float

    def __str__(self) -> str:
        return f"{self.count} per {self.per:g} s"


def parse_rate(value: Any) -> Rate | None:
    """``"30/minute"``, ``"5/10s"``, ``"100/h"``; ``""``, ``"off"`` or 0: no limit."""
    if isinstance(value, Rate) or value is None:
        return value
    text = str(value).strip().lower()
    if text in ("", "0", "off", "none"):
        return None
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"expected COUNT/PERIOD such as \"30/minute\" or \"5/10s\", got {text!r}")
    count, amount, unit = match.groups()
    per = (float(amount) if amount else 1.0) * _UNITS[unit]
    if int(count) <= 0 or per <= 0:
        raise ValueError("a rate needs a positive count and period")
    return Rate(int(count), per)


class RateLimiter:
    """One token bucket per key (an API key's name, a client address)."""

    def __init__(self, rate: Rate | None, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}   # key → (tokens, at)

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is there."""
        rate = self.rate
        if rate is None:
            return 0.0
        now = self.clock()
        refill = rate.count / rate.per
        tokens, at = self._buckets.get(key, (float(rate.count), now))
        tokens = min(float(rate.count), tokens + (now - at) * refill)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._forget_full(now, refill)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / refill

    def _forget_full(self, now: float, refill: float) -> None:
        """Drop buckets that have refilled: they hold nothing a new bucket would not."""
        assert self.rate is not None
        full = [k for k, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * refill >= self.rate.count]
        for key in full:
            del self._buckets[key]


class Limited(Exception):
    """A limit was reached: *details* for the caller, *retry_after* seconds if it helps."""

    def __init__(self, details: str, retry_after: float | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str | None:
        return None if self.retry_after is None else str(max(1, math.ceil(self.retry_after)))


class Throttle:
    """The rate limits of one action (console creation, tunnel connect)."""

    def __init__(self, action: str, per_key: Rate | None, per_address: Rate | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.action = action
        self.keys = RateLimiter(per_key, clock)
        self.addresses = RateLimiter(per_address, clock)

    def check_address(self, address: str | None) -> None:
        """*address*: the client's (Tornado's remote_ip; those it has none for share one)."""
        wait = self.addresses.take(address or "")
        if wait:
            raise Limited(f"too many {self.action} from {address or 'an unknown address'} (limit "
                          f"{self.addresses.rate}); retry in {math.ceil(wait)} s", wait)

    def check_key(self, name: str) -> None:
        wait = self.keys.take(name)
        if wait:
            raise Limited(f"too many {self.action} with API key {name} (limit "
                          f"{self.keys.rate}); retry in {math.ceil(wait)} s", wait)


class ConsoleCaps:
    """At most *per_owner* live consoles per owner and *per_target* per target (host:port).

    A console counts from its creation (pending ones too: each is a way in) until its
    "closed" event, or at the latest until it would have ended by itself (its first-use
    deadline plus its longest session), so a close this process never hears of cannot
    hold a slot for ever."""

    def __init__(self, per_owner: int, per_target: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.per_owner = per_owner
        self.per_target = per_target
        self.clock = clock
        self._live: dict[str, tuple[str, str, float]] = {}   # id → (owner, target, ends_by)

    def admit(self, console_id: str, owner: str, target: str, ends_by: float) -> None:
        """Reserve a slot for a new console, or raise Limited saying which cap is full."""
        if not (self.per_owner or self.per_target):
            return
        now = self.clock()
        for gone in [i for i, (_, _, ends) in self._live.items() if ends <= now]:
            del self._live[gone]
        owners = sum(1 for o, _, _ in self._live.values() if o == owner)
        targets = sum(1 for _, t, _ in self._live.values() if t == target)
        if self.per_owner and owners >= self.per_owner:
            raise Limited(f"{owner} has {owners} live consoles, the most allowed; close one"
                          " (DELETE /api/v1/consoles/{id}) or wait for one to end")
        if self.per_target and targets >= self.per_target:
            raise Limited(f"{target} has {targets} live consoles, the most allowed; close one"
                          " or wait for one to end")
        self._live[console_id] = (owner, target, ends_by)

    def release(self, console_id: str) -> None:
        self._live.pop(console_id, None)

    def on_event(self, event: str, body: dict[str, Any]) -> None:
        """A Consoles listener: a closed console frees its slot."""
        if event == "closed":
            self.release(body["id"])
