"""The ``rl-provider`` CLI, run as a subprocess against a local home with real jobs.

One module-scoped home holds a completed job (with metrics), a failed one, a running one and a
stopped one, all created through ``LocalBackend`` from tiny entry points; each command's output
and exit code are checked against them. Jobs that a test changes (stop, follow) are its own.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from rl_provider import RLEstimator, __version__
from rl_provider.backends.local import LocalBackend
from rl_provider.cli.plot import LearningCurve
from rl_provider.core.enums import EndpointStatus, TrainingJobStatus
from rl_provider.exceptions import BackendError

SCRIPT = Path(sys.executable).with_name("rl-provider")
REWARDS = [(10.0, 15.0), (12.5, 20.0), (11.0, 21.0), (14.0, 25.5)]  # (mean, max) per iteration

COMPLETED = f"""
import os, time
from pathlib import Path
for mean, best in {REWARDS!r}:
    print(f"iteration episode_reward_mean: {{mean}} episode_reward_max: {{best}}", flush=True)
    time.sleep(0.2)
print("[bold]printed as is[/bold]", flush=True)
Path(os.environ["SM_MODEL_DIR"], "policy.txt").write_text("greedy-v1")
"""
FAILED = """
print("loading the environment", flush=True)
raise ValueError("bad hyperparameter: lr=-1")
"""
RUNNING = """
import time
print("started", flush=True)
while True:
    time.sleep(0.2)
"""
GATED = """
import os, time
from pathlib import Path
flag = Path(os.environ["MY_FLAG"])
print("waiting for the flag", flush=True)
deadline = time.time() + 120
while not flag.exists() and time.time() < deadline:
    time.sleep(0.1)
print("released", flush=True)
"""
HANDLER = """
import os

def model_fn(model_dir):
    return open(os.path.join(model_dir, "policy.txt")).read()

def predict_fn(data, model):
    if not isinstance(data, list):
        raise ValueError("expected a list of numbers")
    return {"sum": sum(data), "policy": model}
"""
HANDLER_V2 = """
def model_fn(model_dir):
    return "v2"

def predict_fn(data, model):
    return {"sum": sum(data), "policy": model}
"""
BROKEN_HANDLER = """
def model_fn(model_dir):
    raise RuntimeError("weights are corrupt")
"""
HAS_SERVER = importlib.util.find_spec("rl_provider.serving.server") is not None


@dataclass
class Home:
    path: Path
    backend: LocalBackend
    root: Path

    def start(self, name: str, body: str, **kwargs: object) -> RLEstimator:
        src = self.root / f"src-{name}"
        src.mkdir()
        (src / "train.py").write_text(textwrap.dedent(body))
        estimator = RLEstimator(
            entry_point="train.py",
            source_dir=str(src),
            toolkit="ray",
            toolkit_version="2.60.0",
            framework="pytorch",
            backend=self.backend,
            **kwargs,
        )
        estimator.fit(wait=False, job_name=name)
        return estimator

    def wait(self, name: str, *, log_line: str | None = None) -> None:
        """Until the job ends (or, with ``log_line``, until its log shows that line)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log_line is not None:
                if log_line in self.backend.read_logs(name)[0]:
                    return
            elif self.backend.describe_training_job(name).is_terminal:
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} did not get there in 120 s")

    def source(self, name: str, handler: str) -> Path:
        src = self.root / f"inference-{name}"
        src.mkdir()
        (src / "inference.py").write_text(textwrap.dedent(handler))
        return src


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    backend = LocalBackend(root / "home", stop_grace_seconds=5.0)
    home = Home(path=root / "home", backend=backend, root=root)
    home.start("cli-completed", COMPLETED)
    home.start("cli-failed", FAILED)
    home.start("cli-stopped", RUNNING)
    home.start("cli-running", RUNNING)
    home.wait("cli-stopped", log_line="started")
    backend.stop_training_job("cli-stopped")
    for name in ("cli-completed", "cli-failed", "cli-stopped"):
        home.wait(name)
    home.wait("cli-running", log_line="started")
    yield home
    for endpoint in backend.list_endpoints()["Endpoints"]:  # no model server outlives the tests
        backend.delete_endpoint(endpoint["EndpointName"])
    for summary in backend.list_training_jobs()["TrainingJobSummaries"]:
        backend.stop_training_job(summary["TrainingJobName"])  # no process outlives the tests
    for summary in backend.list_training_jobs()["TrainingJobSummaries"]:
        home.wait(summary["TrainingJobName"])


def cli_env(**extra: str) -> dict[str, str]:
    # No inherited terminal width, home, AWS or Airflow settings (the Airflow tests' harness sets
    # AIRFLOW__* for this process): each test says what it runs against, as a user's shell would.
    dropped = ("COLUMNS", "RL_PROVIDER_HOME", "AIRFLOW_HOME")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("AWS_", "AIRFLOW__", "AIRFLOW_CONN_"))
    }
    return {**env, "NO_COLOR": "1", **extra}


def rl(*args: str, home: Home | None, stdin: str | None = None, **env: str):
    """Run the console script; ``--home`` first when a home is given."""
    argv = [str(SCRIPT), *(("--home", str(home.path)) if home else ()), *args]
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=cli_env(**env), timeout=180
    )


def one_line_error(result) -> str:
    """The CLI's error contract: nothing on stdout, one line on stderr, no traceback."""
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rl-provider: error: "), lines[0]
    return lines[0]


def row(stdout: str, name: str) -> list[str]:
    (line,) = [line for line in stdout.splitlines() if line.split()[:1] == [name]]
    return line.split()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"  # the first chunk of every PNG holds the size
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------------------------- jobs
def test_console_script_is_installed_and_imports_light():
    assert SCRIPT.is_file(), "pip install -e . installs the rl-provider console script"
    for argv in ([str(SCRIPT)], [sys.executable, "-m", "rl_provider.cli"]):
        version = subprocess.run([*argv, "--version"], capture_output=True, text=True)
        assert (version.returncode, version.stdout) == (0, f"rl-provider {__version__}\n")
    code = (
        "import sys, json; from rl_provider.cli.app import build_parser; build_parser(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    heavy = {"airflow", "boto3", "botocore", "ray", "torch", "numpy", "gymnasium", "matplotlib"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_jobs_list_table_filters_and_json(home):
    result = rl("jobs", "list", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["NAME", "STATUS", "SECONDARY"]
    for name, status in [
        ("cli-completed", "Completed"),
        ("cli-failed", "Failed"),
        ("cli-stopped", "Stopped"),
        ("cli-running", "InProgress"),
    ]:
        assert row(result.stdout, name)[1] == status

    failed = rl("jobs", "list", "--status", "failed", home=home)  # case-insensitive, like enums
    assert failed.returncode == 0
    assert [line.split()[0] for line in failed.stdout.splitlines()[1:]] == ["cli-failed"]

    # Options after the command work as well as before it; --json is for scripts.
    newest = rl("jobs", "list", "--limit", "2", "--json", "--home", str(home.path), home=None)
    assert newest.returncode == 0, newest.stderr
    summaries = json.loads(newest.stdout)["TrainingJobSummaries"]
    assert len(summaries) == 2
    created = [datetime.fromisoformat(s["CreationTime"]) for s in summaries]
    assert created == sorted(created, reverse=True)
    assert created[0].tzinfo is not None

    none = rl("jobs", "list", "--contains", "no-such-job", home=home)
    assert (none.returncode, none.stdout, none.stderr.strip()) == (0, "", "No training jobs.")


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        (
            "cli-completed",
            0,
            ["Completed", "Uploading", "episode_reward_max", "25.5", "model.tar.gz"],
        ),
        ("cli-failed", 1, ["Failed", "ValueError: bad hyperparameter: lr=-1"]),
        ("cli-stopped", 1, ["Stopped", "Stopping"]),
        ("cli-running", 0, ["InProgress (Training)", "(so far)", "No metrics recorded"]),
    ],
)
def test_jobs_describe_exit_code_follows_the_job(home, name, code, expected):
    result = rl("jobs", "describe", name, home=home)
    assert result.returncode == code, result.stderr
    text = result.stdout + result.stderr
    for fragment in expected:
        assert fragment in text, (fragment, text)

    as_json = rl("jobs", "describe", name, "--json", home=home)
    assert as_json.returncode == code
    api = json.loads(as_json.stdout)
    assert api["TrainingJobName"] == name
    assert api["TrainingJobStatus"] == expected[0].split()[0]
    assert datetime.fromisoformat(api["CreationTime"]).tzinfo is not None


def test_jobs_logs_prints_raw_lines(home):
    result = rl("jobs", "logs", "cli-completed", home=home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "iteration episode_reward_mean: 10.0 episode_reward_max: 15.0"
    assert "[bold]printed as is[/bold]" in lines  # log text is never read as rich markup

    # --follow on a job that already ended prints everything and exits by its state.
    failed = rl("jobs", "logs", "cli-failed", "--follow", home=home)
    assert failed.returncode == 1
    assert "loading the environment" in failed.stdout
    assert "ended Failed" in failed.stderr


@pytest.mark.slow
def test_logs_follow_ends_when_the_running_job_ends(home):
    flag = home.root / "release-follow"
    home.start("cli-follow", GATED, environment={"MY_FLAG": str(flag)})
    follower = subprocess.Popen(
        [str(SCRIPT), "--home", str(home.path), "jobs", "logs", "cli-follow", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert follower.stdout.readline() == "waiting for the flag\n"
        assert follower.poll() is None  # still following: the job is running
        assert home.backend.describe_training_job("cli-follow").training_job_status is (
            TrainingJobStatus.IN_PROGRESS
        )
        flag.touch()
        rest, err = follower.communicate(timeout=120)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert rest.splitlines()[-1] == "released"
    assert "ended Completed" in err


@pytest.mark.slow
def test_stop_wait_returns_once_stopped(home):
    home.start("cli-stop-wait", RUNNING)
    home.wait("cli-stop-wait", log_line="started")
    result = rl("jobs", "stop", "cli-stop-wait", "--wait", "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["TrainingJobStatus"] == "Stopped"
    assert "ended Stopped" in result.stderr
    description = home.backend.describe_training_job("cli-stop-wait")
    assert description.training_job_status is TrainingJobStatus.STOPPED

    # Stopping a job that already ended is not a stop: exit 0 only if it is Stopped.
    assert rl("jobs", "stop", "cli-stop-wait", home=home).returncode == 0
    completed = rl("jobs", "stop", "cli-completed", "--wait", home=home)
    assert completed.returncode == 1
    assert "already ended Completed" in completed.stderr


# ------------------------------------------------------------------------------- metrics
def test_jobs_metrics_table_and_json(home):
    table = rl("jobs", "metrics", "cli-completed", home=home)
    assert table.returncode == 0, table.stderr
    assert row(table.stdout, "episode_reward_mean")[1:6] == ["4", "10", "14", "10", "14"]
    assert row(table.stdout, "episode_reward_max")[1:6] == ["4", "15", "25.5", "15", "25.5"]

    result = rl("jobs", "metrics", "cli-completed", "--json", home=home)
    metrics = json.loads(result.stdout)["Metrics"]
    assert sorted(metrics) == ["episode_reward_max", "episode_reward_mean"]
    assert [p["Value"] for p in metrics["episode_reward_mean"]] == [m for m, _ in REWARDS]
    seconds = [p["Seconds"] for p in metrics["episode_reward_max"]]
    assert seconds == sorted(seconds)
    assert 0 <= seconds[0] < seconds[-1] < 600


def test_metrics_plot_writes_a_png_with_one_line_per_metric(home, tmp_path):
    target = tmp_path / "curve.png"
    result = rl("jobs", "metrics", "cli-completed", "--plot", str(target), "--json", home=home)
    assert result.returncode == 0, result.stderr
    plot = json.loads(result.stdout)["Plot"]
    assert png_size(target) == (plot["Width"], plot["Height"]) == (1000, 600)
    assert plot["Lines"] == [
        {"Label": "episode_reward_max", "Points": 4},
        {"Label": "episode_reward_mean", "Points": 4},
    ]
    assert plot["XLabel"] == "seconds since training started"
    assert plot["Title"] == "cli-completed (Completed)"
    assert not [p for p in tmp_path.iterdir() if p.name != "curve.png"]  # no temp file left

    human = rl("jobs", "metrics", "cli-completed", "--plot", str(tmp_path / "c.svg"), home=home)
    assert human.returncode == 0
    assert "Wrote" in human.stderr
    assert "2 line(s)" in human.stderr
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


def test_learning_curve_x_axis_is_seconds_since_start():
    series = {"loss": [(100.0, 3.0), (101.5, 2.0), (104.0, 1.0)], "reward": [(102.0, 7.0)]}
    curve = LearningCurve.build(series, start=100.0, title="job")
    lines = curve.figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["loss", "reward"]
    assert list(lines[0].get_xdata()) == [0.0, 1.5, 4.0]
    assert list(lines[0].get_ydata()) == [3.0, 2.0, 1.0]
    assert [(line.label, line.points) for line in curve.lines] == [("loss", 3), ("reward", 1)]
    # Coinciding metrics stay distinguishable: each line has its own style.
    assert [line.get_linestyle() for line in lines] == ["-", "--"]
    legend = [text.get_text() for text in curve.figure.axes[0].get_legend().get_texts()]
    assert legend == ["loss", "reward"]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--plot", "{tmp}/curve.gif"], 2, "'.gif'"),
        (["--plot", "{tmp}/missing/curve.png"], 2, "does not exist"),
        # A job whose logs matched nothing has no curve: not found, and no empty picture.
        (["--plot", "{tmp}/curve.png"], 3, "no metric data to plot"),
    ],
)
def test_metrics_plot_refusals(home, tmp_path, args, code, fragment):
    args = [a.format(tmp=tmp_path) for a in args]
    result = rl("jobs", "metrics", "cli-failed", *args, home=home)
    assert result.returncode == code
    assert fragment in one_line_error(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("missing", "args", "fragment"),
    [
        (
            "matplotlib",
            ["jobs", "metrics", "cli-completed", "--plot", "{tmp}/c.png"],
            "pip install 'airflow-provider-rl[plot]'",
        ),
        (
            "rl_provider.hooks.rl",
            ["--conn", "rl_default", "jobs", "list"],
            "Use --backend local|sagemaker|ray instead",
        ),
        (
            "rl_provider.backends.sagemaker",
            ["--backend", "sagemaker", "jobs", "list"],
            "pip install 'airflow-provider-rl[sagemaker]'",
        ),
    ],
)
def test_a_missing_optional_part_is_a_usage_error(home, tmp_path, missing, args, fragment):
    # The same main() with the module made unimportable, as on an install without it.
    argv = [a.format(tmp=tmp_path) for a in args]
    if args[0] == "jobs":
        argv = ["--home", str(home.path), *argv]
    code = (
        f"import sys; sys.modules[{missing!r}] = None; from rl_provider.cli import main; "
        f"sys.exit(main({argv!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env()
    )
    assert result.returncode == 2
    assert fragment in one_line_error(result)
    assert list(tmp_path.iterdir()) == []  # no plot, no file of any kind


# -------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["jobs", "describe", "nope"], 3, "'nope' not found"),
        (["jobs", "logs", "nope", "--follow"], 3, "'nope' not found"),
        (["jobs", "metrics", "nope"], 3, "'nope' not found"),
        (["jobs", "stop", "nope", "--wait"], 3, "'nope' not found"),
        (["models", "describe", "nope"], 3, "'nope'"),
        (["models", "delete", "nope"], 3, "'nope'"),
        (["endpoints", "describe", "nope"], 3, "'nope'"),
        (["endpoints", "delete", "nope"], 3, "'nope'"),
        (["endpoints", "invoke", "nope", "--data", "[1, 2]"], 3, "'nope'"),
        # The body is checked before the backend is asked anything.
        (["endpoints", "invoke", "nope", "--data", "{bad"], 2, "--data is not valid JSON"),
        (["--conn", "rl_default", "jobs", "list"], 2, "drop --backend/--home/--region"),
        (["--backend", "sagemaker", "jobs", "list"], 2, "--home is the local backend's"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(home, args, code, fragment):
    result = rl(*args, home=home)
    assert result.returncode == code, result.stderr
    assert fragment in one_line_error(result)


def test_missing_home_says_how_to_fix_it(tmp_path):
    missing = tmp_path / "no-such-home"
    result = rl("jobs", "list", home=None, RL_PROVIDER_HOME=str(missing))
    assert result.returncode == 2
    message = one_line_error(result)
    assert str(missing) in message
    assert "from RL_PROVIDER_HOME" in message
    assert "--home DIR" in message
    assert not missing.exists()  # a read command never creates a home at a typo


def test_usage_errors_exit_2(home):
    bad_status = rl("jobs", "list", "--status", "Sleeping", home=home)
    assert bad_status.returncode == 2
    assert "valid values are InProgress, Completed, Failed, Stopping, Stopped" in bad_status.stderr
    assert rl("jobs", "list", "--limit", "0", home=home).returncode == 2
    assert rl("jobs", home=home).returncode == 2


@pytest.mark.slow  # two Airflow imports
def test_conn_takes_the_backend_from_an_airflow_connection(home, tmp_path):
    connection = json.dumps({"conn_type": "rl", "extra": {"home": str(home.path)}})
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONN_RL_CLI": connection}
    result = rl("--conn", "rl_cli", "jobs", "list", "--status", "Failed", home=None, **env)
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "cli-failed")[1] == "Failed"
    missing = rl("--conn", "rl_nope", "jobs", "list", home=None, **env)
    assert missing.returncode == 2
    assert "'rl_nope'" in one_line_error(missing)


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.slow  # `airflow db migrate` + `airflow connections add` (~15 s) and Airflow imports
def test_conn_reads_the_metadata_database_and_never_creates_state(home, tmp_path):
    """A connection stored in Airflow's metadata database, as the REST API and the UI store it,
    is what ``--conn`` reads; an unknown id or a wrong AIRFLOW_HOME is a one-line exit 2."""
    airflow = Path(sys.executable).with_name("airflow")
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    env = cli_env(AIRFLOW_HOME=str(airflow_home))
    extra = json.dumps({"home": str(home.path)})
    for argv in (
        ["db", "migrate"],
        ["connections", "add", "rl_meta", "--conn-type", "rl", "--conn-extra", extra],
    ):
        done = subprocess.run(
            [str(airflow), *argv], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
    before = (tree(airflow_home), tree(home.path))

    listed = rl("--conn", "rl_meta", "jobs", "list", home=None, AIRFLOW_HOME=str(airflow_home))
    assert listed.returncode == 0, listed.stderr
    assert row(listed.stdout, "cli-completed")[1] == "Completed"
    assert row(listed.stdout, "cli-failed")[1] == "Failed"
    described = rl(
        "jobs", "describe", "cli-completed", "--conn", "rl_meta", "--json",
        home=None, AIRFLOW_HOME=str(airflow_home),
    )  # fmt: skip
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["TrainingJobStatus"] == "Completed"

    unknown = rl("--conn", "rl_typo", "jobs", "list", home=None, AIRFLOW_HOME=str(airflow_home))
    assert unknown.returncode == 2
    assert "'rl_typo' does not exist" in one_line_error(unknown)
    # No rl_default: the deployment's local default home ($AIRFLOW_HOME/rl_provider), which has
    # never run a job here: an error, not an empty listing from a freshly created state.db.
    default = rl("--conn", "rl_default", "jobs", "list", home=None, AIRFLOW_HOME=str(airflow_home))
    assert default.returncode == 2
    assert str(airflow_home / "rl_provider") in one_line_error(default)
    assert (tree(airflow_home), tree(home.path)) == before  # nothing created by any read

    # A wrong AIRFLOW_HOME: an empty directory (no metadata database), or none at all.
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    for wrong, fragment in ((empty, "airflow.db does not exist"), (missing, "no Airflow home")):
        result = rl("--conn", "rl_meta", "jobs", "list", home=None, AIRFLOW_HOME=str(wrong))
        assert result.returncode == 2
        assert fragment in one_line_error(result)
    assert not (empty / "airflow.db").exists()
    assert not (empty / "rl_provider").exists()
    assert not missing.exists()


@pytest.fixture
def moto_env():
    """A moto server on 127.0.0.1 standing in for AWS; the env points boto3 at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its state per process, not per server: start from an empty account.
    urllib.request.urlopen(
        urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    ).close()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }
    yield env
    server.stop()


@pytest.mark.slow  # boto3 import per CLI run
def test_sagemaker_backend_through_moto(moto_env):
    import boto3

    client = boto3.client(
        "sagemaker",
        endpoint_url=moto_env["AWS_ENDPOINT_URL"],
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_training_job(
        TrainingJobName="cli-on-aws",
        AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        OutputDataConfig={"S3OutputPath": "s3://bucket/rl"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    listed = rl(
        "--backend",
        "sagemaker",
        "--region",
        "us-west-2",
        "jobs",
        "list",
        "--json",
        home=None,
        **moto_env,
    )
    assert listed.returncode == 0, listed.stderr
    names = [s["TrainingJobName"] for s in json.loads(listed.stdout)["TrainingJobSummaries"]]
    assert names == ["cli-on-aws"]
    described = rl(
        "jobs", "describe", "cli-on-aws", "--backend", "sagemaker", home=None, **moto_env
    )
    assert described.returncode == 0, described.stderr
    assert "s3://bucket/rl/cli-on-aws/output/model.tar.gz" in described.stdout
    missing = rl("--backend", "sagemaker", "jobs", "describe", "nope", home=None, **moto_env)
    assert missing.returncode == 3
    assert "'nope'" in one_line_error(missing)


# ----------------------------------------------------------------------- models, endpoints
@pytest.fixture(scope="module")
def model(home):
    estimator = RLEstimator.attach("cli-completed", backend=home.backend)
    model = estimator.create_model(
        name="cli-model", entry_point="inference.py", source_dir=str(home.source("ok", HANDLER))
    )
    model.create("local")
    return model


def test_models_list_describe_delete(home, model):
    listed = rl("models", "list", home=home)
    assert listed.returncode == 0, listed.stderr
    assert row(listed.stdout, "cli-model")
    described = rl("models", "describe", "cli-model", home=home)
    assert described.returncode == 0
    assert row(described.stdout, "Program")[1:] == ["inference.py"]
    assert model.model_data in described.stdout
    api = json.loads(rl("models", "describe", "cli-model", "--json", home=home).stdout)
    assert api["PrimaryContainer"]["ModelDataUrl"] == model.model_data


def test_failed_endpoint_describe_exits_1(home):
    estimator = RLEstimator.attach("cli-completed", backend=home.backend)
    broken = estimator.create_model(
        name="cli-broken",
        entry_point="inference.py",
        source_dir=str(home.source("broken", BROKEN_HANDLER)),
    )
    with pytest.raises(BackendError):
        broken.deploy(1, "local", endpoint_name="cli-broken")
    result = rl("endpoints", "describe", "cli-broken", home=home)
    assert result.returncode == 1
    assert "Failed" in result.stdout
    assert "Failure reason" in result.stdout
    listed = rl("endpoints", "list", "--json", home=home)
    statuses = {
        e["EndpointName"]: e["EndpointStatus"] for e in json.loads(listed.stdout)["Endpoints"]
    }
    assert statuses["cli-broken"] == EndpointStatus.FAILED.value
    invoked = rl("endpoints", "invoke", "cli-broken", "--data", "[1]", home=home)
    assert invoked.returncode == 1
    assert "cannot serve" in one_line_error(invoked)
    # Only an InService endpoint can be updated: refused before a new endpoint config exists.
    config = home.backend.describe_endpoint("cli-broken").endpoint_config_name
    refused = rl("endpoints", "update", "cli-broken", "--model", "cli-broken", home=home)
    assert refused.returncode == 2
    assert "only an InService endpoint can be updated" in one_line_error(refused)
    assert home.backend.describe_endpoint("cli-broken").endpoint_config_name == config
    deleted = rl("endpoints", "delete", "cli-broken", home=home)
    assert deleted.returncode == 0, deleted.stderr
    assert rl("endpoints", "describe", "cli-broken", home=home).returncode == 3


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SERVER, reason="rl_provider.serving.server (issue 4) not there yet")
def test_endpoint_describe_invoke_delete(home, model):
    model.deploy(1, "local", endpoint_name="cli-endpoint")
    try:
        described = rl("endpoints", "describe", "cli-endpoint", home=home)
        assert described.returncode == 0, described.stderr
        assert "InService" in described.stdout
        assert "cli-model" in described.stdout

        answer = rl(
            "endpoints", "invoke", "cli-endpoint", "--data", "[1, 2, 3.5]", "--json", home=home
        )
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout) == {"sum": 6.5, "policy": "greedy-v1"}
        piped = rl("endpoints", "invoke", "cli-endpoint", "--data", "-", home=home, stdin="[4]")
        assert json.loads(piped.stdout) == {"sum": 4, "policy": "greedy-v1"}

        refused = rl("endpoints", "invoke", "cli-endpoint", "--data", '{"a": 1}', home=home)
        assert refused.returncode == 1
        assert "expected a list of numbers" in one_line_error(refused)

        # Roll the endpoint over to another model (blue/green) with the runbook command.
        estimator = RLEstimator.attach("cli-completed", backend=home.backend)
        estimator.create_model(
            name="cli-model-v2",
            entry_point="inference.py",
            source_dir=str(home.source("v2", HANDLER_V2)),
        ).create("local")
        updated = rl("endpoints", "update", "cli-endpoint", "--model", "cli-model-v2", home=home)
        assert updated.returncode == 0, updated.stderr
        assert "serves model cli-model-v2" in updated.stderr
        answer = rl("endpoints", "invoke", "cli-endpoint", "--data", "[1]", "--json", home=home)
        assert json.loads(answer.stdout) == {"sum": 1, "policy": "v2"}
    finally:
        deleted = rl("endpoints", "delete", "cli-endpoint", home=home)
    assert deleted.returncode == 0, deleted.stderr
    assert rl("endpoints", "describe", "cli-endpoint", home=home).returncode == 3


def test_models_delete(home, model):
    assert rl("models", "delete", "cli-model", home=home).returncode == 0
    assert rl("models", "describe", "cli-model", home=home).returncode == 3
