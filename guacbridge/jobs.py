"""The broker's job contract, apart from AMQP: validate a job, run it through the core, and
say whether a failure is final (dead-letter it) or passing (retry it later).

The contract is ``schemas/job-v1.json``. An ``open`` job's console id is derived from its
``job_id``, so a job delivered twice (a crash before the ack, a producer's replay) can only
ever make one console; the repeat is answered with that console.

A job's owner is the producer RabbitMQ vouches for (``amqp:<user>``, see broker.py). A
``job_id`` is its producer's: another producer's repeat is refused before anything changes
(it would otherwise get a fresh token for the first producer's console, voiding its link).
``extend``, ``close`` and ``power`` act on the producer's own consoles only, unless it is an admin
producer; another owner's console answers like one that does not exist, as in the API.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from importlib import resources as importlib_resources
from typing import Any

import jsonschema

from . import console_request
from .consoles import Consoles
from .errors import ConsoleError
from .power import Power

_NAMESPACE = uuid.UUID("4f6a8a0e-3b1f-5c7e-9a0d-6b2c1e8f7d35")
SCHEMA = json.loads(importlib_resources.files("guacbridge").joinpath(
    "schemas/job-v1.json").read_text(encoding="utf-8"))
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class JobRejected(Exception):
    """The job can never succeed as it is: dead-letter it with this reason."""


class JobDeferred(Exception):
    """Something passing failed (an agent, a database, guacd): try again later."""


def console_id_for(job_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, job_id))


def parse(body: bytes) -> dict[str, Any]:
    """The job in a message body, or JobRejected saying what is wrong with it."""
    try:
        job = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise JobRejected(f"the body is not JSON: {e}") from None
    errors = sorted(_VALIDATOR.iter_errors(job), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "the job"
        raise JobRejected(f"{where}: {first.message[:200]}")
    return job


async def run(consoles: Consoles, job: dict[str, Any], owner: str,
              queue_agent: str, admin: bool = False,
              power: Power | None = None) -> dict[str, Any]:
    """The reply body for a valid job taken from *queue_agent*'s queue: the API's body plus
    ``job_id``. *owner* published it; *admin* lets it extend and close any console; *power*
    serves ``power`` jobs."""
    try:
        if job["action"] == "open":
            reply = await _open(consoles, job, owner, queue_agent)
        else:
            grant = await consoles.current(job["console_id"])
            if grant is None or not (admin or grant.owner == owner):
                raise JobRejected(f"no console with id {job['console_id']}")   # as the API
            if job["action"] == "extend":
                reply = await consoles.extend(job["console_id"],
                                              job.get("seconds", consoles.settings.extend_step))
            elif job["action"] == "power":     # a console opened with "power": true
                if power is None:
                    raise JobRejected("power jobs are not served here")
                reply = await power.act(job["console_id"], job["power_action"],
                                        by=f"job from {owner}")
            else:       # the schema caps the reason; it reaches the owner's browser
                reply = await consoles.close(job["console_id"],
                                             job.get("reason") or f"closed by job from {owner}")
    except ConsoleError as e:
        if e.status >= 500:
            raise JobDeferred(e.details) from None
        raise JobRejected(e.details) from None
    return {**reply, "job_id": job["job_id"]}


async def _open(consoles: Consoles, job: dict[str, Any], owner: str,
                queue_agent: str) -> dict[str, Any]:
    agent = job["target"].get("agent")
    if agent != queue_agent:
        raise JobRejected(f"target.agent {agent!r} does not match the routing key "
                          f"{queue_agent!r}")
    request = {k: job[k] for k in console_request.FIELDS if k in job}
    console_id = console_id_for(job["job_id"])
    try:
        return await consoles.open(request, owner, console_id=console_id)
    except ConsoleError as e:
        # The core refuses a repeat by another owner (409) before it changes anything. Admin
        # or not: a repeat is never a way to take over another producer's link.
        if e.status == 409:
            existing = await consoles.current(console_id)
            if existing is not None and existing.owner != owner:
                raise JobRejected(f"job_id {job['job_id']} belongs to another producer") \
                    from None
        raise


class OneAtATime:
    """Jobs with the same ``job_id`` run one after another in this process, in the order
    they were delivered: a repeat in flight beside its first delivery (several jobs per
    consumer, or two consumers) waits for it, then finds its console, so their replies go out
    in the order their tokens were issued and the last one holds the token that works."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(job_id) or (asyncio.Lock(), 0)
        self._locks[job_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[job_id]
            if users == 1:
                del self._locks[job_id]
            else:
                self._locks[job_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
