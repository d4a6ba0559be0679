"""One definition of a console request: the API, the broker's jobs and the shipped schemas
accept the same fields with the same rules."""
import asyncio
import json
from importlib import resources

import pytest

from guacbridge import config, console_request, jobs
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901}


def shipped(name):
    return json.loads(resources.files("guacbridge").joinpath(f"schemas/{name}").read_text())


def test_the_openapi_documents_exactly_the_requests_fields_and_rules():
    documented = shipped("openapi.json")["components"]["schemas"]["ConsoleRequest"]
    assert documented["properties"] == console_request.schema("openapi")
    assert documented["required"] == ["target"]


def test_the_job_contract_carries_exactly_the_requests_fields_and_rules():
    properties = shipped("job-v1.json")["properties"]
    envelope = {"version", "job_id", "action", "console_id", "seconds", "reason",
                "power_action"}
    assert {k: v for k, v in properties.items() if k not in envelope} == \
        console_request.schema("job")


@pytest.fixture
def parts(tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path),
                           recordings_dir=str(tmp_path / "recordings"))
    return assemble(settings, SqliteGrantStore(settings.sqlite_path), load_agents(settings))


def test_a_broker_job_asking_for_a_recording_gets_a_recorded_console(parts):
    job = jobs.parse(json.dumps({"version": 1, "job_id": "p-1", "action": "open",
                                 "target": TARGET, "recording": {"keys": True}}).encode())
    reply = asyncio.run(jobs.run(parts.consoles, job, "producer", "static"))
    assert reply["recording"] is True and reply["job_id"] == "p-1"
    events = asyncio.run(parts.consoles.history(reply["id"]))["events"]
    assert [e["data"] for e in events if e["kind"] == "recording.requested"] == \
        [{"include_keys": True}]


@pytest.mark.parametrize("field, value, words", [
    ("ttl", 0, "ttl must be a whole number of seconds from 1 to 3600"),
    ("user", "", "user must be a string of 1 to 128 characters"),
    ("recording", "yes", 'recording must be true, false or {"keys": true}'),
])
def test_api_and_broker_refuse_a_bad_field_in_the_same_words(parts, field, value, words):
    with pytest.raises(ConsoleError) as api:
        asyncio.run(parts.consoles.open({"target": TARGET, field: value}, owner="portal"))
    job = {"version": 1, "job_id": f"p-{field}", "action": "open", "target": TARGET,
           field: value}
    with pytest.raises(jobs.JobRejected) as broker:
        asyncio.run(jobs.run(parts.consoles, job, "producer", "static"))
    assert api.value.status == 400 and words in api.value.details
    assert words in str(broker.value)
