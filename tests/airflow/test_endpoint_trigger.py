"""RLEndpointTrigger: the outcome table, the serializer round trip, and real endpoints.

The endpoints are real: a model server started by the local backend on 127.0.0.1, serving a
tiny user handler (no RLlib), deleted again at the end of every test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tarfile
import textwrap
from pathlib import Path

import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.core.jobs import EndpointDescription
from rl_provider.triggers.endpoint import RLEndpointTrigger, endpoint_event

HANDLER = """
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "policy.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    return {"action": int(data[2] + data[3] > 0), "policy": model["name"]}
"""
BROKEN_HANDLER = """
def model_fn(model_dir):
    raise RuntimeError("the weights are corrupt")
"""
# Loads only once the test creates the file it names: the endpoint stays Creating until then.
WAITING_HANDLER = """
import os, time

def model_fn(model_dir):
    deadline = time.monotonic() + 120
    while not os.path.exists({release!r}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {{"name": "waited"}}

def predict_fn(data, model):
    return {{"action": 0, "policy": model["name"]}}
"""


def _tar(path: Path, files: dict[str, str]) -> str:
    source = path.with_suffix(".d")
    source.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            (source / name).write_text(textwrap.dedent(text))
            archive.add(source / name, arcname=name)
    return path.as_uri()


@pytest.fixture
def backend(rl_home):
    backend = LocalBackend(rl_home)
    yield backend
    for summary in backend.list_endpoints()["Endpoints"]:
        backend.delete_endpoint(summary["EndpointName"])  # no server left behind


def make_endpoint(backend: LocalBackend, tmp_path: Path, name: str, handler: str) -> str:
    """Model + config + CreateEndpoint, as the deploy operator sends them; returns the config."""
    make_model(backend, tmp_path, name, handler)
    config = f"{name}-config"
    backend.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"ModelName": name, "InstanceType": "local", "InitialInstanceCount": 1}
        ],
    )
    backend.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return config


def make_model(backend: LocalBackend, tmp_path: Path, name: str, handler: str) -> None:
    """A model whose artifact holds policy.json ({"name": name}) and whose code is ``handler``."""
    model = _tar(tmp_path / f"{name}-model.tar.gz", {"policy.json": json.dumps({"name": name})})
    code = _tar(tmp_path / f"{name}-sourcedir.tar.gz", {"inference.py": handler})
    backend.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": "rl-provider/test:1",
            "ModelDataUrl": model,
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": code,
            },
        },
    )


def run_trigger(trigger: RLEndpointTrigger, caplog: pytest.LogCaptureFixture) -> list[dict]:
    """Run the trigger to its end on a debug event loop; fail on any slow (blocking) callback."""

    async def collect() -> list[dict]:
        asyncio.get_running_loop().slow_callback_duration = 0.5
        return [event.payload async for event in trigger.run()]

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        events = asyncio.run(collect(), debug=True)
    slow = [
        r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()
    ]
    assert not slow, f"the trigger blocked the event loop: {slow}"
    assert len(events) == 1, events
    json.dumps(events[0])  # events cross processes: plain JSON only
    return events


def description(status: str, config: str = "c-new", reason: str | None = None):
    return EndpointDescription.from_api(
        {
            "EndpointName": "ep",
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "FailureReason": reason,
            "CreationTime": "2026-11-25T00:00:00+00:00",
            "LastModifiedTime": "2026-11-25T00:00:00+00:00",
        }
    )


@pytest.mark.parametrize(
    ("status", "config", "wanted", "outcome", "reason"),
    [
        ("Creating", "c-new", "c-new", None, None),
        ("Updating", "c-old", "c-new", None, None),
        ("SystemUpdating", "c-old", None, None, None),
        ("Deleting", "c-old", None, None, None),
        ("InService", "c-new", "c-new", "success", None),
        ("InService", "c-old", None, "success", None),
        # SageMaker rolls a failed update back: InService on the old config, with a reason.
        ("InService", "c-old", "c-new", "failed", "update to endpoint config c-new failed"),
        ("Failed", "c-new", "c-new", "failed", "boom"),
        ("OutOfService", "c-new", None, "failed", "boom"),
        ("UpdateRollbackFailed", "c-old", "c-new", "failed", "boom"),
    ],
)
def test_endpoint_event_outcomes(status, config, wanted, outcome, reason):
    event = endpoint_event(description(status, config, "boom"), endpoint_config_name=wanted)
    if outcome is None:
        assert event is None
        return
    assert event["status"] == outcome
    assert event["endpoint_status"] == status
    assert event["endpoint"]["EndpointConfigName"] == config
    if reason is None:
        assert event["failure_reason"] is None
    else:
        assert reason in event["failure_reason"]
        assert "boom" in event["failure_reason"]


@pytest.mark.parametrize(
    "trigger",
    [
        RLEndpointTrigger(endpoint_name="ep"),
        RLEndpointTrigger(
            endpoint_name="ep",
            endpoint_config_name="ep-2026-11-25-00-00-00-000",
            poll_interval=7,
            deadline=1_900_000_000.5,
            conn_id="rl_prod",
            backend_settings={
                "conn_id": "rl_prod",
                "backend": "sagemaker",
                "aws_conn_id": "aws_prod",
                "region_name": "eu-west-1",
                "bucket": "my-bucket",
                "verify": False,
                "botocore_config": {"retries": {"mode": "standard", "max_attempts": 7}},
            },
        ),
    ],
    ids=["defaults", "every-setting"],
)
def test_trigger_round_trips_through_airflows_serializer(airflow_db, trigger):
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models import Trigger
    from airflow.serialization.serialized_objects import BaseSerialization

    row = Trigger.from_object(trigger)
    kwargs = BaseSerialization.deserialize(BaseSerialization.serialize(row.kwargs))
    rebuilt = TriggerRunner().get_trigger_by_classpath(row.classpath)(**kwargs)

    assert type(rebuilt) is RLEndpointTrigger
    assert Trigger.from_object(rebuilt).kwargs == row.kwargs
    for name in ("endpoint_name", "endpoint_config_name", "poll_interval", "deadline", "conn_id"):
        assert getattr(rebuilt, name) == getattr(trigger, name)
    assert rebuilt.backend_settings == trigger.backend_settings
    assert rebuilt.hook().settings == trigger.hook().settings


def test_trigger_waits_for_a_real_endpoint_to_serve(backend, tmp_path, caplog):
    config = make_endpoint(backend, tmp_path, "ep-ok", HANDLER)
    trigger = RLEndpointTrigger(
        endpoint_name="ep-ok", endpoint_config_name=config, poll_interval=0.2, deadline=None
    )
    (event,) = run_trigger(trigger, caplog)
    assert event["status"] == "success", event
    assert event["endpoint_config_name"] == config
    assert event["endpoint"]["EndpointStatus"] == "InService"
    assert event["endpoint"]["Url"].startswith("http://127.0.0.1:")
    answer = backend.invoke_endpoint(
        EndpointName="ep-ok", Body=b"[0.0, 0.0, 0.1, 0.2]", ContentType="application/json"
    )
    assert json.loads(answer["Body"].read()) == {"action": 1, "policy": "ep-ok"}


def test_trigger_reports_a_failed_endpoint_with_its_reason(backend, tmp_path, caplog):
    config = make_endpoint(backend, tmp_path, "ep-broken", BROKEN_HANDLER)
    trigger = RLEndpointTrigger(
        endpoint_name="ep-broken", endpoint_config_name=config, poll_interval=0.2
    )
    (event,) = run_trigger(trigger, caplog)
    assert event["status"] == "failed", event
    assert event["endpoint_status"] == "Failed"
    assert "the weights are corrupt" in event["failure_reason"]


def test_trigger_times_out_at_its_deadline_then_succeeds_once_loaded(backend, tmp_path, caplog):
    release = tmp_path / "release"
    handler = WAITING_HANDLER.format(release=str(release))
    config = make_endpoint(backend, tmp_path, "ep-slow", handler)
    trigger = RLEndpointTrigger(
        endpoint_name="ep-slow", endpoint_config_name=config, poll_interval=0.2, deadline=1.0
    )
    (event,) = run_trigger(trigger, caplog)  # the deadline (1970) has passed at the first poll
    assert event["status"] == "timeout", event
    assert event["endpoint_status"] == "Creating"
    assert "still Creating at the deadline" in event["message"]

    release.touch()
    trigger = RLEndpointTrigger(
        endpoint_name="ep-slow", endpoint_config_name=config, poll_interval=0.2
    )
    (event,) = run_trigger(trigger, caplog)
    assert event["status"] == "success", event


def test_trigger_reports_a_missing_endpoint_as_an_error(backend, caplog):
    (event,) = run_trigger(RLEndpointTrigger(endpoint_name="nope", poll_interval=0.2), caplog)
    assert event["status"] == "error"
    assert event["endpoint_status"] is None
    assert "nope" in event["message"]
