"""``"prompt": false``: the same rule through the API and the broker, kept with the console
as guacbridge's own mark among its sealed parameters (never a request's, never guacd's)."""
import asyncio
import json

import pytest

from guacbridge import config, console_request, jobs, parameters
from guacbridge.agents import load_agents
from guacbridge.consoles import ConsoleError
from guacbridge.service import assemble
from guacbridge.store.sqlite import SqliteGrantStore

TARGET = {"agent": "static", "protocol": "vnc", "hostname": "10.0.0.5", "port": 5901}


@pytest.fixture
def parts(tmp_path):
    settings = config.load(env={}, data_dir=str(tmp_path))
    store = SqliteGrantStore(settings.sqlite_path)
    return assemble(settings, store, load_agents(settings)), store


@pytest.mark.parametrize("prompt, marked", [(False, True), (True, False), (None, False)])
def test_a_broker_job_keeps_its_prompt_flag_with_the_console(parts, prompt, marked):
    service, store = parts
    job = {"version": 1, "job_id": f"p-{prompt}", "action": "open", "target": TARGET}
    if prompt is not None:
        job["prompt"] = prompt
    reply = asyncio.run(jobs.run(service.consoles, jobs.parse(json.dumps(job).encode()),
                                 "producer", "static"))
    params = store.get(reply["id"]).target.params
    assert (parameters.NO_PROMPT in params) is marked


def test_a_request_cannot_set_the_mark_itself(parts):
    service, _ = parts
    with pytest.raises(ConsoleError) as e:
        asyncio.run(service.consoles.open(
            {"target": {**TARGET, parameters.NO_PROMPT: "true"}}, owner="portal"))
    assert e.value.status == 400 and "unknown parameter(s) for vnc" in e.value.details


def test_prompt_false_is_for_the_direct_sink_only():
    with pytest.raises(ConsoleError) as e:
        console_request.parse({"target": TARGET, "sink": "guacamole", "user": "alice",
                               "prompt": False}, use_by=120, duration=60, max_duration=60,
                              sinks=("direct", "guacamole"), recording=lambda v: (False, False))
    assert e.value.details == ("prompt false needs the direct sink: Guacamole's own page asks"
                               " for missing credentials itself")
