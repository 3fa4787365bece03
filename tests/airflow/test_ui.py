"""The UI plugin's routes through Airflow's own API app (FastAPI TestClient, simple auth manager,
real JWTs) over real local-backend jobs of a non-default ``rl`` connection.

Jobs: one completed (three metric points), one failed with a hostile log line and failure
reason, one still running (for Stop), plus an endpoint serving the completed job's model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rl_provider.backends.local import LocalBackend
from tests.airflow.dagkit import start_job
from tests.airflow.uikit import api_client, bearer, serve_job, token

CONN = "rl_ui_test"
HOSTILE = "<script>alert('x')</script>"
TRAIN = f"""
import sys, time
print("start", flush=True)
for i in range(3):
    print(f"iter {{i}}: episode_reward_mean: {{10.0 * (i + 1)}} episode_reward_max: {{20.0 + i}}", flush=True)
if "--fail" in sys.argv:
    print({HOSTILE!r}, flush=True)
    sys.exit({HOSTILE!r})
if "--sleep" in sys.argv:
    for i in range(600):
        print(f"tick {{i}}", flush=True)
        print(f"episode_reward_max: {{100 + i}}", flush=True)
        time.sleep(0.2)
import os
open(os.path.join(os.environ["SM_MODEL_DIR"], "policy.txt"), "w").write("trained")
"""


def _wait_terminal(backend: LocalBackend, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.describe_training_job(name).training_job_status
        if status.is_terminal():
            return status.value
        time.sleep(0.1)
    raise AssertionError(f"{name} did not end in {timeout}s")


@pytest.fixture(scope="module")
def world(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Jobs, a model and an endpoint in the home of connection ``rl_ui_test``."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == CONN).delete()
        session.add(
            Connection(
                conn_id=CONN,
                conn_type="rl",
                extra=json.dumps({"backend": "local", "home": str(home)}),
            )
        )
    backend = LocalBackend(home, stop_grace_seconds=2.0)
    src = root / "src"
    src.mkdir()
    (src / "train.py").write_text(TRAIN)

    done = start_job(backend, src, "ui-completed", note=HOSTILE)
    failed = start_job(backend, src, "ui-failed", fail=True)
    assert _wait_terminal(backend, done) == "Completed"
    assert _wait_terminal(backend, failed) == "Failed"

    serve_job(backend, done, root, model="ui-model", endpoint="ui-endpoint")
    yield backend
    for summary in backend.list_training_jobs()["TrainingJobSummaries"]:
        if summary["TrainingJobStatus"] == "InProgress":
            backend.stop_training_job(summary["TrainingJobName"])
    backend.delete_endpoint("ui-endpoint")


@pytest.fixture(scope="module")
def client(world: LocalBackend) -> Iterator[Any]:
    yield from api_client()


VIEWER = "viewer"
USER = "user"


# ------------------------------------------------------------------------------ security
ROUTES = [
    ("GET", "/rl/"),
    ("GET", "/rl/jobs"),
    ("GET", "/rl/jobs/ui-completed"),
    ("GET", "/rl/models"),
    ("GET", "/rl/models/ui-model"),
    ("GET", "/rl/endpoints"),
    ("GET", "/rl/endpoints/ui-endpoint"),
    ("GET", "/rl/static/rl.js"),
    ("GET", "/rl/static/rl.css"),
    ("GET", "/rl/api/connections"),
    ("GET", "/rl/api/jobs"),
    ("GET", "/rl/api/jobs/ui-completed"),
    ("GET", "/rl/api/jobs/ui-completed/metrics"),
    ("GET", "/rl/api/jobs/ui-completed/logs"),
    ("POST", "/rl/api/jobs/ui-completed/stop"),
    ("GET", "/rl/api/models"),
    ("GET", "/rl/api/models/ui-model"),
    ("GET", "/rl/api/endpoints"),
    ("GET", "/rl/api/endpoints/ui-endpoint"),
    ("POST", "/rl/api/endpoints/ui-endpoint/invoke"),
]


def test_every_route_is_listed_here(client: Any) -> None:
    # A new route must join ROUTES, so the 401 test below covers it.
    from rl_provider.ui.app import create_app

    declared = {
        (method, "/rl" + route.path)
        for route in create_app().routes
        for method in getattr(route, "methods", ()) or ()
        if method != "HEAD"
    }
    listed = {
        (
            m,
            p.replace("ui-completed", "{name}")
            .replace("ui-model", "{name}")
            .replace("ui-endpoint", "{name}")
            .replace("rl.js", "{filename}")
            .replace("rl.css", "{filename}"),
        )
        for m, p in ROUTES
    }
    assert declared <= listed


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_route_answers_without_atoken(client: Any, method: str, path: str) -> None:
    response = client.request(method, path, params={"conn": CONN}, json={}, follow_redirects=False)
    if method == "GET" and "/api/" not in path:
        # A page sends the browser to Airflow's login, which brings it back after.
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/auth/login?next=")
    else:
        assert response.status_code == 401, response.text
    assert "ui-completed" not in response.text
    forged = client.request(
        method, path, params={"conn": CONN}, json={}, headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 403
    assert "ui-completed" not in forged.text


def test_the_cookie_the_airflow_login_sets_is_accepted(client: Any) -> None:
    client.cookies.set("_token", token(VIEWER))
    try:
        response = client.get("/rl/jobs", params={"conn": CONN})
    finally:
        client.cookies.clear()
    assert response.status_code == 200
    assert "ui-completed" in response.text


def test_viewers_read_but_cannot_stop_or_invoke(client: Any, world: LocalBackend) -> None:
    assert (
        client.get("/rl/api/jobs", params={"conn": CONN}, headers=bearer(VIEWER)).status_code == 200
    )
    stop = client.post(
        "/rl/api/jobs/ui-completed/stop", params={"conn": CONN}, json={}, headers=bearer(VIEWER)
    )
    assert stop.status_code == 403
    invoke = client.post(
        "/rl/api/endpoints/ui-endpoint/invoke",
        params={"conn": CONN},
        json=[1],
        headers=bearer(VIEWER),
    )
    assert invoke.status_code == 403


def test_a_user_without_a_role_is_refused(client: Any) -> None:
    response = client.get("/rl/jobs", headers=bearer(""))
    assert response.status_code == 403


# --------------------------------------------------------------------------------- jobs
def test_jobs_list_filters_by_status_and_shows_last_metrics(client: Any) -> None:
    listed = client.get("/rl/api/jobs", params={"conn": CONN}, headers=bearer(VIEWER)).json()
    rows = {row["name"]: row for row in listed["jobs"]}
    assert {"ui-completed", "ui-failed"} <= set(rows)
    assert rows["ui-completed"]["metrics"] == {
        "episode_reward_mean": 30.0,
        "episode_reward_max": 22.0,
    }
    assert rows["ui-completed"]["duration_s"] > 0

    failed = client.get(
        "/rl/api/jobs", params={"conn": CONN, "status": "Failed"}, headers=bearer(VIEWER)
    ).json()
    assert [row["name"] for row in failed["jobs"]] == ["ui-failed"]
    page = client.get("/rl/jobs", params={"conn": CONN, "status": "Failed"}, headers=bearer(VIEWER))
    assert page.status_code == 200
    assert "ui-failed" in page.text
    assert "ui-completed" not in page.text
    assert 'option value="Failed" selected' in page.text

    bad = client.get(
        "/rl/api/jobs", params={"conn": CONN, "status": "Done"}, headers=bearer(VIEWER)
    )
    assert bad.status_code == 400
    assert "InProgress" in bad.json()["detail"]


def test_job_page_shows_transitions_hyperparameters_artifacts(
    client: Any, world: LocalBackend
) -> None:
    page = client.get("/rl/jobs/ui-completed", params={"conn": CONN}, headers=bearer(VIEWER))
    assert page.status_code == 200
    text = page.text
    for status in ("Starting", "Downloading", "Training", "Uploading", "Completed"):
        assert f"<td>{status}</td>" in text
    assert "model.tar.gz" in text
    assert "output.tar.gz" in text
    assert "episode_reward_mean" in text  # the metric definitions the curve will draw
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    # The hyperparameter value is shown escaped, never as markup.
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(" in text

    detail = client.get(
        "/rl/api/jobs/ui-completed", params={"conn": CONN}, headers=bearer(VIEWER)
    ).json()
    durations = [t["duration_s"] for t in detail["transitions"]]
    assert all(d is not None and d >= 0 for d in durations)
    assert (
        detail["artifacts"]["Model artifacts"]
        == world.describe_training_job("ui-completed").model_artifacts
    )


def test_failure_reason_and_hostile_log_lines_are_data(client: Any) -> None:
    page = client.get("/rl/jobs/ui-failed", params={"conn": CONN}, headers=bearer(VIEWER))
    assert page.status_code == 200
    assert HOSTILE not in page.text
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page.text
    )  # FailureReason, escaped
    logs = client.get("/rl/api/jobs/ui-failed/logs", params={"conn": CONN}, headers=bearer(VIEWER))
    assert HOSTILE in logs.json()["lines"]  # JSON data; the page's script shows it as text
    assert logs.headers["content-type"] == "application/json"


def test_hostile_job_name_in_the_url_is_escaped(client: Any) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    response = client.get(f"/rl/jobs/{hostile}", params={"conn": CONN}, headers=bearer(VIEWER))
    assert response.status_code in (400, 404)
    assert response.headers["content-type"].startswith("text/html")
    assert hostile not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    # The connection id is user text too.
    response = client.get("/rl/jobs", params={"conn": hostile}, headers=bearer(VIEWER))
    assert response.status_code == 400
    assert hostile not in response.text


def test_curve_data_is_every_metric_and_polls_by_cursor(client: Any, world: LocalBackend) -> None:
    url = "/rl/api/jobs/ui-completed/metrics"
    first = client.get(url, params={"conn": CONN}, headers=bearer(VIEWER)).json()
    expected = world.metrics("ui-completed")  # what the runner recorded from the same lines
    assert set(first["series"]) == {"episode_reward_mean", "episode_reward_max"}
    for metric, points in expected.items():
        assert [v for _, v in first["series"][metric]] == [v for _, v in points]
    assert [v for _, v in first["series"]["episode_reward_mean"]] == [10.0, 20.0, 30.0]
    # The cursor is the log's: the byte offset after the lines read.
    log_size = Path(world.log_location("ui-completed")).stat().st_size
    assert json.loads(first["cursor"]) == log_size
    assert first["terminal"] is True
    # Asking with the cursor returns only what is new: nothing, for a finished job.
    again = client.get(
        url, params={"conn": CONN, "cursor": first["cursor"]}, headers=bearer(VIEWER)
    ).json()
    assert again["series"] == {}
    assert again["cursor"] == first["cursor"]
    bad = client.get(url, params={"conn": CONN, "cursor": "[1"}, headers=bearer(VIEWER))
    assert bad.status_code == 400
    bad = client.get(url, params={"conn": CONN, "cursor": '"x"'}, headers=bearer(VIEWER))
    assert bad.status_code == 400


def test_log_tail_follows_a_running_job_by_cursor_then_stop(
    client: Any, world: LocalBackend
) -> None:
    src = Path(world.home) / "src-running"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(TRAIN)
    start_job(world, src, "ui-running", sleep=True)
    url = "/rl/api/jobs/ui-running/logs"
    deadline = time.monotonic() + 30
    lines: list[str] = []
    cursor = None
    while time.monotonic() < deadline and not any(line.startswith("tick 3") for line in lines):
        params = {"conn": CONN} if cursor is None else {"conn": CONN, "cursor": cursor}
        page = client.get(url, params=params, headers=bearer(VIEWER)).json()
        assert page["status"] == "InProgress"
        lines += page["lines"]
        cursor = page["cursor"]
        time.sleep(0.2)
    ticks = [line for line in lines if line.startswith("tick ")]
    # Each poll returned only new lines: no line twice, in order.
    assert ticks == [f"tick {i}" for i in range(len(ticks))]
    assert len(ticks) >= 4

    # The curves poll by the same cursor: each poll brings only the points printed since.
    metrics_url = "/rl/api/jobs/ui-running/metrics"
    maxima: list[float] = []
    batches = 0
    cursor = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and batches < 3:
        params = {"conn": CONN} if cursor is None else {"conn": CONN, "cursor": cursor}
        page = client.get(metrics_url, params=params, headers=bearer(VIEWER)).json()
        assert page["terminal"] is False
        new = [v for _, v in page["series"].get("episode_reward_max", [])]
        batches += bool(new)
        maxima += new
        cursor = page["cursor"]
        time.sleep(0.3)
    assert batches == 3
    # No point twice, none missing: the 3 first reports, then one per tick, in order.
    assert maxima == [20.0, 21.0, 22.0] + [100.0 + i for i in range(len(maxima) - 3)]
    assert len(maxima) > 4

    stop_url = "/rl/api/jobs/ui-running/stop"
    # CSRF: the session cookie alone is not enough without this origin, nor a form post.
    client.cookies.set("_token", token(USER))
    try:
        assert client.post(stop_url, params={"conn": CONN}, json={}).status_code == 403
        evil = {"Origin": "http://evil.example"}
        assert (
            client.post(stop_url, params={"conn": CONN}, json={}, headers=evil).status_code == 403
        )
        form = client.post(
            stop_url,
            params={"conn": CONN},
            data={"a": "b"},
            headers={"Origin": "http://testserver"},
        )
        assert form.status_code == 415
        assert world.describe_training_job("ui-running").training_job_status.value == "InProgress"
        stopped = client.post(
            stop_url, params={"conn": CONN}, json={}, headers={"Origin": "http://testserver"}
        )
    finally:
        client.cookies.clear()
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] in ("Stopping", "Stopped")
    assert _wait_terminal(world, "ui-running") == "Stopped"


# ----------------------------------------------------------------------- models, endpoints
def test_model_pages_link_the_training_job(client: Any) -> None:
    listed = client.get("/rl/api/models", params={"conn": CONN}, headers=bearer(VIEWER)).json()
    assert [m["name"] for m in listed["models"]] == ["ui-model"]
    detail = client.get(
        "/rl/api/models/ui-model", params={"conn": CONN}, headers=bearer(VIEWER)
    ).json()
    assert detail["training_job"] == "ui-completed"
    page = client.get("/rl/models/ui-model", params={"conn": CONN}, headers=bearer(VIEWER)).text
    assert 'href="/rl/jobs/ui-completed?conn=rl_ui_test"' in page


def test_endpoint_page_and_invoke(client: Any) -> None:
    detail = client.get(
        "/rl/api/endpoints/ui-endpoint", params={"conn": CONN}, headers=bearer(VIEWER)
    ).json()
    assert detail["status"] == "InService"
    (variant,) = detail["variants"]
    assert variant["model"] == "ui-model"
    assert variant["training_job"] == "ui-completed"
    page = client.get(
        "/rl/endpoints/ui-endpoint", params={"conn": CONN}, headers=bearer(VIEWER)
    ).text
    assert 'href="/rl/jobs/ui-completed?conn=rl_ui_test"' in page
    assert 'id="invoke-send"' in page

    answer = client.post(
        "/rl/api/endpoints/ui-endpoint/invoke",
        params={"conn": CONN},
        json={"obs": [1, 2]},
        headers=bearer(USER),
    )
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.json()["body"]) == {"policy": "trained", "echo": {"obs": [1, 2]}}
    not_json = client.post(
        "/rl/api/endpoints/ui-endpoint/invoke",
        params={"conn": CONN},
        content=b"{nope",
        headers={**bearer(USER), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400


def test_connection_choice(client: Any) -> None:
    listed = client.get("/rl/api/connections", headers=bearer(VIEWER)).json()["connections"]
    assert listed[0] == "rl_default"
    assert CONN in listed
    page = client.get("/rl/jobs", params={"conn": CONN}, headers=bearer(VIEWER)).text
    assert f'<option value="{CONN}" selected>' in page
    missing = client.get("/rl/api/jobs", params={"conn": "nope"}, headers=bearer(VIEWER))
    assert missing.status_code == 400
    assert "does not exist" in missing.json()["detail"]


def test_plugin_is_registered_by_the_entry_point(client: Any) -> None:
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert "rl_provider" in {p.name for p in plugins}
    # Under pytest the source tree (with pip's airflow_provider_rl.egg-info) is on sys.path, so
    # the entry point is seen twice and Airflow skips the second; an installed package is seen
    # once (`airflow plugins` run from elsewhere lists it without error).
    ours = {source: error for source, error in errors.items() if "rl_provider" in source}
    assert all("already registered" in error for error in ours.values()), ours
    views, _ = plugins_manager._get_ui_plugins()
    assert {"rl-jobs", "rl-models", "rl-endpoints"} <= {v["url_route"] for v in views}
