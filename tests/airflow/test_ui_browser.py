"""The pages in a real browser: headless Debian chromium against a real ``airflow api-server``.

The server runs in its own AIRFLOW_HOME (a copy of the test session's migrated database), on a
free port, in its own process group; the browser logs in through Airflow's login page, then
checks what a user sees: the jobs list, a completed job's learning curves (one series per
metric, every point), a running job's log growing, and Stop ending it as Stopped. Screenshots
are saved next to the test's temporary files (and to ``$RL_UI_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rl_provider.backends.local import LocalBackend
from tests.airflow.cdp import Browser, chromium_path
from tests.airflow.dagkit import start_job
from tests.airflow.uikit import serve_job

pytestmark = pytest.mark.slow

PASSWORD = "rl-ui-secret"
POINTS = 24
# A completed job with two noisy, rising curves; a running one that prints a tick every 0.3 s.
TRAIN = f"""
import math, sys, time
if "--run" in sys.argv:
    for i in range(100000):
        print(f"tick {{i}}", flush=True)
        time.sleep(0.3)
for i in range({POINTS}):
    mean = 200 * (1 - math.exp(-i / 7)) + 12 * math.sin(i)
    print(f"iteration {{i}}: episode_return_mean: {{mean:.2f}} episode_return_max: {{mean + 40 + 8 * math.cos(i):.2f}}", flush=True)
print("<script>document.title='pwned'</script> is data", flush=True)
import os
open(os.path.join(os.environ["SM_MODEL_DIR"], "policy.txt"), "w").write("ok")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``airflow api-server`` on a free port with the plugin loaded from the entry point."""
    home = tmp_path_factory.mktemp("api-server-home")
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    rl_home = home / "rl_provider"
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "RL_PROVIDER_HOME": str(rl_home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=120
    )
    log = (home / "api-server.log").open("wb")
    process = subprocess.Popen(
        [
            airflow,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "api-server did not start:\n"
                        + (home / "api-server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.3)
        yield {"base": base, "rl_home": rl_home, "home": home}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server and its workers
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # a worker that outlived the server: none left
        log.close()


@pytest.fixture(scope="module")
def jobs(
    server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalBackend]:
    backend = LocalBackend(server["rl_home"], stop_grace_seconds=2.0)
    src = tmp_path_factory.mktemp("browser-src")
    (src / "train.py").write_text(TRAIN)

    start_job(backend, src, "cartpole-curves")
    start_job(backend, src, "cartpole-running", run=True)
    deadline = time.monotonic() + 60
    while not backend.describe_training_job("cartpole-curves").is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert backend.describe_training_job("cartpole-curves").training_job_status.value == "Completed"
    serve_job(backend, "cartpole-curves", src, model="cartpole-model", endpoint="cartpole")
    yield backend
    if not backend.describe_training_job("cartpole-running").is_terminal:
        backend.stop_training_job("cartpole-running")
    backend.delete_endpoint("cartpole")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does it)")
    launched = Browser.launch(executable)
    yield launched
    launched.close()


def _shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("RL_UI_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_login_jobs_curves_log_follow_and_stop(
    server: dict[str, Any], jobs: LocalBackend, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    base = server["base"]
    shots = _shots(tmp_path)

    # Not logged in: the jobs page sends the browser to Airflow's login, which comes back.
    page.goto(f"{base}/rl/jobs")
    page.wait_for("document.querySelector('input[name=username]') !== null", 30)
    assert "/auth/login" in page.evaluate("location.href")
    page.type_into("input[name=username]", "admin")
    page.type_into("input[name=password]", PASSWORD)
    page.evaluate("document.querySelector('button[type=submit]').click()")
    page.wait_for("location.pathname === '/rl/jobs' && document.body.dataset.ready", 30)

    # The status filter (a select that submits itself) keeps only the completed job.
    page.evaluate(
        "const s = document.querySelector('select[name=status]'); s.value = 'Completed'; "
        "s.dispatchEvent(new Event('change'))"
    )
    page.wait_for("location.search.includes('status=Completed')", 15)
    page.wait_for("document.body.dataset.ready", 15)
    completed = page.evaluate(
        "[...document.querySelectorAll('table.jobs td:first-child a')].map(a => a.textContent)"
    )
    assert completed == ["cartpole-curves"]
    page.goto(f"{base}/rl/jobs")
    page.wait_for("document.body.dataset.ready", 15)
    names = page.evaluate(
        "[...document.querySelectorAll('table.jobs td:first-child a')].map(a => a.textContent)"
    )
    assert set(names) == {"cartpole-curves", "cartpole-running"}
    page.screenshot(shots / "jobs.png")

    # Inside the Airflow UI: the plugin's navigation entry frames the same page.
    page.goto(f"{base}/plugin/rl-jobs")
    framed = page.wait_for(
        "(() => { const f = document.querySelector('iframe'); const d = f && f.contentDocument;"
        " return d && d.querySelector('table.jobs') && f.getAttribute('src'); })()",
        30,
    )
    assert framed.endswith("/rl/jobs")
    page.screenshot(shots / "in-airflow.png")
    page.goto(f"{base}/rl/jobs")
    page.wait_for("document.body.dataset.ready", 15)

    # The completed job: one polyline per metric, POINTS points each, drawn from the API data.
    page.evaluate(
        "[...document.querySelectorAll('table.jobs a')].find(a => a.textContent === 'cartpole-curves').click()"
    )
    page.wait_for(
        "document.querySelector('#curves svg') !== null && document.querySelector('#log .line') !== null",
        30,
    )
    series = page.evaluate(
        "[...document.querySelectorAll('#curves polyline.series')].map(p => "
        "[p.dataset.metric, Number(p.dataset.points), p.getAttribute('points').trim().split(' ').length])"
    )
    assert sorted(series) == [
        ["episode_return_max", POINTS, POINTS],
        ["episode_return_mean", POINTS, POINTS],
    ]
    # The hostile log line is text in the page, not a script that ran.
    assert page.evaluate("document.title") != "pwned"
    assert page.evaluate(
        "[...document.querySelectorAll('#log .line')].some(l => l.textContent.startsWith('<script>'))"
    )
    assert page.evaluate("document.querySelector('#stop')") is None  # no Stop for a finished job
    page.screenshot(shots / "job-page.png")

    # The running job: new log lines appear while the page is open; Stop ends it.
    page.goto(f"{base}/rl/jobs/cartpole-running?conn=rl_default")
    first = page.wait_for(
        "Number(document.querySelector('#job').dataset.logLines || 0) > 0 && "
        "Number(document.querySelector('#job').dataset.logLines)",
        30,
    )
    grown = page.wait_for(
        f"Number(document.querySelector('#job').dataset.logLines) > {first} + 3 && "
        "Number(document.querySelector('#job').dataset.logLines)",
        20,
    )
    ticks = page.evaluate(
        "[...document.querySelectorAll('#log .line')].map(l => l.textContent).filter(t => t.startsWith('tick '))"
    )
    assert ticks == [f"tick {i}" for i in range(len(ticks))]  # each line once, in order
    assert grown > first
    page.screenshot(shots / "running.png")
    page.evaluate("document.querySelector('#stop').click()")
    page.wait_for("document.querySelector('#job').dataset.status === 'Stopped'", 30)
    assert page.evaluate("document.querySelector('#stop')") is None
    assert page.evaluate("document.querySelector('#status').textContent") == "Stopped"
    # The transitions table was re-read when the status changed: it ends with Stopped.
    transitions = page.wait_for(
        "(() => { const s = [...document.querySelectorAll('#transitions td:first-child')]"
        ".map(td => td.textContent); return s[s.length - 1] === 'Stopped' && s; })()",
        10,
    )
    assert "Stopping" in transitions
    assert jobs.describe_training_job("cartpole-running").training_job_status.value == "Stopped"
    page.screenshot(shots / "stopped.png")

    # The endpoint page: its model's training job, and the invoke box's answer.
    page.goto(f"{base}/rl/endpoints/cartpole?conn=rl_default")
    page.wait_for("document.body.dataset.ready", 15)
    linked = page.evaluate("[...document.querySelectorAll('table a')].map(a => a.textContent)")
    assert "cartpole-curves" in linked
    page.evaluate(
        "document.querySelector('#invoke-body').value = JSON.stringify({observation: [1, 2]});"
        "document.querySelector('#invoke-send').click()"
    )
    answer = page.wait_for("document.querySelector('#invoke-answer').textContent", 20)
    assert json.loads(answer) == {"policy": "ok", "echo": {"observation": [1, 2]}}
    page.screenshot(shots / "endpoint.png")
