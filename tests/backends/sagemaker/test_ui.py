"""The UI pages over the SageMaker backend: an ``rl`` connection with ``backend: sagemaker``
whose ``aws`` connection points at the moto server, read through Airflow's API app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

# The Airflow harness sets AIRFLOW_HOME before airflow is imported; its fixtures are reused here.
from tests.airflow.conftest import airflow_db  # noqa: F401
from tests.airflow.uikit import api_client, bearer

from .test_airflow import connections  # noqa: F401
from .test_moto import estimator_on, log_group, put_events  # noqa: F401


@pytest.fixture
def client(airflow_db: Any) -> Iterator[Any]:  # noqa: F811
    yield from api_client()


def test_sagemaker_jobs_through_the_pages(
    client,
    connections,  # noqa: F811
    backend,
    log_group,  # noqa: F811
    source_dir,
    unique,
):
    rl_conn, _ = connections
    job = unique("rl-ui")
    estimator_on(backend, source_dir).fit(job_name=job, logs=False)  # moto: Completed at once
    t0 = int(time.time() * 1000) - 60_000
    put_events(
        log_group,
        f"{job}/algo-1-1700000000",
        [(t0, "episode_reward_mean: 10.5"), (t0 + 10, "<script>alert(1)</script>")],
    )
    params = {"conn": rl_conn}

    listed = client.get("/rl/api/jobs", params=params, headers=bearer("viewer")).json()["jobs"]
    (row,) = [r for r in listed if r["name"] == job]
    assert row["status"] == "Completed"

    page = client.get(f"/rl/jobs/{job}", params=params, headers=bearer("viewer"))
    assert page.status_code == 200, page.text
    assert f"Training job {job}" in page.text
    assert "rl.training.config.lr" in page.text  # hyperparameters, from DescribeTrainingJob

    logs = client.get(f"/rl/api/jobs/{job}/logs", params=params, headers=bearer("viewer")).json()
    assert logs["lines"] == [
        "[algo-1] episode_reward_mean: 10.5",
        "[algo-1] <script>alert(1)</script>",
    ]
    again = client.get(
        f"/rl/api/jobs/{job}/logs",
        params={**params, "cursor": logs["cursor"]},
        headers=bearer("viewer"),
    ).json()
    assert again["lines"] == []  # the CloudWatch cursor: nothing read twice
    metrics = client.get(f"/rl/api/jobs/{job}/metrics", params=params, headers=bearer("viewer"))
    assert metrics.status_code == 200
    assert metrics.json()["terminal"] is True


def test_curves_poll_cloudwatch_from_the_cursor(
    client,
    connections,  # noqa: F811
    backend,
    log_group,  # noqa: F811
    source_dir,
    unique,
):
    from rl_provider.ui.connections import backend_for

    rl_conn, _ = connections
    job = unique("rl-ui-curves")
    estimator_on(backend, source_dir).fit(job_name=job, logs=False)
    stream = f"{job}/algo-1-1700000000"
    t0 = int(time.time() * 1000) - 60_000
    # moto's DescribeTrainingJob replaces the MetricDefinitions with its own "test:dcg" one.
    report = "#quality_metric: host=algo-1, test dcg <score>={}"
    put_events(log_group, stream, [(t0, report.format(0.5)), (t0 + 10, "warming up")])
    # What the UI's own CloudWatch client asks and receives, seen through botocore's events.
    asked: list[dict[str, Any]] = []
    received: list[int] = []
    logs = backend_for(rl_conn).client("logs")  # type: ignore[attr-defined]

    def before(params: dict[str, Any], **_: Any) -> None:
        asked.append(dict(params))

    def after(parsed: dict[str, Any], **_: Any) -> None:
        received.append(len(parsed.get("events", [])))

    logs.meta.events.register("before-parameter-build.cloudwatch-logs.GetLogEvents", before)
    logs.meta.events.register("after-call.cloudwatch-logs.GetLogEvents", after)
    url = f"/rl/api/jobs/{job}/metrics"
    try:
        first = client.get(url, params={"conn": rl_conn}, headers=bearer("viewer")).json()
        assert first["series"] == {"test:dcg": [[first["series"]["test:dcg"][0][0], 0.5]]}
        assert "nextToken" not in asked[0]  # the first poll reads from the start
        assert sum(received) == 2
        asked.clear()
        received.clear()

        put_events(log_group, stream, [(t0 + 20, report.format(0.75))])
        second = client.get(
            url, params={"conn": rl_conn, "cursor": first["cursor"]}, headers=bearer("viewer")
        ).json()
    finally:
        logs.meta.events.unregister("before-parameter-build.cloudwatch-logs.GetLogEvents", before)
        logs.meta.events.unregister("after-call.cloudwatch-logs.GetLogEvents", after)
    # Only the new point, read from the stream's token: the two old events are not read again.
    assert [v for _, v in second["series"]["test:dcg"]] == [0.75]
    assert asked
    assert all(call.get("nextToken") for call in asked)
    assert sum(received) == 1
