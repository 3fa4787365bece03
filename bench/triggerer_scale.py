"""Deferred training jobs per triggerer: CPU, memory, file descriptors and loop lag, in one run.

The real ``RLTrainingJobTrigger.run()`` coroutines run in one asyncio event loop, as Airflow's
triggerer runs them (its loop, its worker threads for ``asyncio.to_thread``), against real
backends:

1. **local**: ``--jobs`` real training jobs (detached runners + entry points that print a metric
   line every few seconds and sleep) on a fresh home, followed by ``--local-triggers`` trigger
   instances (round-robin over the jobs: 1,000 real jobs would need ~40 GB of entry-point
   processes on this 2-core machine). Every trigger describes its job and reads its new log
   lines at each poll, as in a deployment.
2. **sagemaker**: a moto server in its own process (its CPU is not ours) whose training jobs stay
   InProgress (moto completes them at creation) and whose CloudWatch streams get a line every few
   seconds; ``--sagemaker-triggers`` of ours and as many of the Amazon provider's
   ``SageMakerTrigger`` poll them, one kind after the other, in the same run. The moto process
   counts the DescribeTrainingJob calls of each kind, so CPU per poll is exact.

Measured over ``--window`` seconds after a warm-up: process CPU (``time.process_time``: the loop
and every thread), RSS and open file descriptors (``/proc/self/fd``, sampled every 0.5 s, max),
and the loop's lag (a coroutine that sleeps 10 ms and records how late it wakes, max). The soft
``ulimit -n`` is set to 1024 (the common default) first, so a per-trigger descriptor leak fails
the run. A short ``--interval`` gives many polls per window; the CPU at a 30 s interval is the
CPU per poll x triggers / 30 s (the per-poll work does not depend on the interval).

    .venv/bin/python bench/triggerer_scale.py                 # ~3 min
    .venv/bin/python bench/triggerer_scale.py --quick         # ~1 min smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REGION = "us-west-2"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

ENTRY_POINT = """
import time
i = 0
while True:
    print(f"iteration {i} episode_reward_mean: {i * 1.5}", flush=True)
    i += 1
    time.sleep(LINE_SECONDS)
"""

# The moto process: jobs stay InProgress, DescribeTrainingJob calls are counted per name prefix,
# and a thread appends a line to each described job's stream every LINE_SECONDS (in this
# process: the feeding costs the benchmark's process nothing).
MOTO_SERVER = """
import collections, json, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import LogsBackend, logs_backends
from moto.server import ThreadedMotoServer
from moto.sagemaker import models

GROUP = "/aws/sagemaker/TrainingJobs"
counts = collections.Counter()
jobs = set()
original = models.SageMakerModelBackend.describe_training_job

def describe_in_progress(self, training_job_name):
    response = dict(original(self, training_job_name))
    counts[training_job_name.split("-", 1)[0]] += 1
    jobs.add(training_job_name)
    response.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")
    for key in ("TrainingEndTime", "ModelArtifacts"):
        response.pop(key, None)
    return response

def feed():
    logs = logs_backends[DEFAULT_ACCOUNT_ID]["REGION"]
    logs.create_log_group(GROUP, {})
    started, i = set(), 0
    while True:
        time.sleep(LINE_SECONDS)
        for job in list(jobs):
            stream = job + "/algo-1-1700000000"
            if job not in started:
                logs.create_log_stream(GROUP, stream)
                started.add(job)
            event = {"timestamp": int(time.time() * 1000), "message": "iteration %d" % i}
            logs.put_log_events(GROUP, stream, [event])
        i += 1

models.SageMakerModelBackend.describe_training_job = describe_in_progress
for operation in ("get_log_events", "describe_log_streams"):
    def counted(self, *args, _original=getattr(LogsBackend, operation), _name=operation, **kwargs):
        counts[_name] += 1
        return _original(self, *args, **kwargs)
    setattr(LogsBackend, operation, counted)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
threading.Thread(target=feed, daemon=True).start()

class Counts(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

control = HTTPServer(("127.0.0.1", 0), Counts)
print(json.dumps({"moto": server.get_host_and_port()[1], "counts": control.server_port}),
      flush=True)
control.serve_forever()
"""


out: Any = sys.stdout


def say(text: str) -> None:
    """Print the report (stdout and stderr carry the triggers' log lines meanwhile)."""
    print(text, file=out, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class IterationClock:
    """The longest event-loop iteration in the loop thread's CPU time: a stall that the machine's
    load cannot cause (wall-time lag also counts the time other processes hold the CPU)."""

    longest = 0.0

    @classmethod
    def install(cls) -> None:
        import asyncio.base_events as base_events

        run_once = base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]

        def timed(loop: Any) -> None:
            start = time.thread_time()
            run_once(loop)
            cls.longest = max(cls.longest, time.thread_time() - start)

        base_events.BaseEventLoop._run_once = timed  # type: ignore[attr-defined]


class Meter:
    """CPU, max RSS, max fds and max loop lag over a window of the running loop."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        self.max_fds = 0
        self.max_rss = 0.0
        self._running = True

    async def _lag(self) -> None:
        while self._running:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            self.max_lag = max(self.max_lag, time.monotonic() - before - 0.01)

    async def _sample(self) -> None:
        while self._running:
            self.max_fds = max(self.max_fds, open_fds())
            self.max_rss = max(self.max_rss, rss_mb())
            await asyncio.sleep(0.5)

    async def measure(self, seconds: float) -> dict[str, float]:
        tasks = [asyncio.create_task(self._lag()), asyncio.create_task(self._sample())]
        IterationClock.longest = 0.0
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        self._running = False
        await asyncio.gather(*tasks)
        return {
            "cpu": cpu,
            "wall": wall,
            "lag": self.max_lag,
            "stall": IterationClock.longest,
            "fds": self.max_fds,
            "rss": self.max_rss,
        }


async def consume(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    return {}


async def run_triggers(
    triggers: list[Any],
    warmup: float,
    window: float,
    *,
    polls: Any = None,
    ready: int = 0,
) -> tuple[dict[str, float], list[Any]]:
    """Start every trigger's run() in this loop; measure the window after the warm-up.

    With ``polls`` (an async count of the polls made so far), the warm-up lasts until ``ready``
    polls were made (every trigger built its clients and polled), and the window's polls are
    counted exactly.
    """
    tasks = [asyncio.create_task(consume(t)) for t in triggers]
    startup = Meter()
    lag = asyncio.create_task(startup.measure(warmup))
    await lag
    if polls is not None:
        deadline = time.monotonic() + 300
        while await polls() < ready:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {await polls()} polls of {ready} in the warm-up")
            await asyncio.sleep(1.0)
    early = [t for t in tasks if t.done()]
    if early:
        raise SystemExit(f"{len(early)} triggers ended during the warm-up: {early[0].result()}")
    first = await polls() if polls is not None else 0
    figures = await Meter().measure(window)
    if polls is not None:
        figures["polls"] = float(await polls() - first)
    figures["startup_lag"] = startup.max_lag
    for task in tasks:
        task.cancel()  # what the triggerer does when the task is cleared or the triggerer stops
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return figures, results


# ------------------------------------------------------------------------------------ local
def start_local_jobs(home: Path, work: Path, jobs: int, line_seconds: float) -> list[str]:
    from rl_provider import RLEstimator
    from rl_provider.backends.local import LocalBackend

    backend = LocalBackend(home, stop_grace_seconds=2.0)
    source = work / "src"
    source.mkdir()
    (source / "train.py").write_text(ENTRY_POINT.replace("LINE_SECONDS", repr(line_seconds)))
    names = []
    for i in range(jobs):
        name = f"scale-{i:03d}"
        RLEstimator(
            entry_point="train.py",
            source_dir=str(source),
            toolkit="ray",
            toolkit_version="2.60.0",
            framework="pytorch",
            instance_type="local",
            backend=backend,
        ).fit(wait=False, job_name=name)
        names.append(name)
    deadline = time.monotonic() + 120
    for name in names:
        while not backend.read_logs(name)[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} printed nothing in 120 s")
            time.sleep(0.1)
    return names


def stop_local_jobs(home: Path, names: list[str]) -> None:
    from rl_provider.backends.local import LocalBackend

    backend = LocalBackend(home)
    for name in names:
        backend.stop_training_job(name)
    deadline = time.monotonic() + 60
    for name in names:
        while not backend.describe_training_job(name).is_terminal:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not stop")
            time.sleep(0.1)


def local_part(args: argparse.Namespace, work: Path) -> dict[str, float]:
    from rl_provider.triggers.training_job import RLTrainingJobTrigger

    home = work / "home"
    say(f"local: starting {args.jobs} real jobs ...")
    names = start_local_jobs(home, work, args.jobs, line_seconds=args.line_seconds)
    try:
        triggers = [
            RLTrainingJobTrigger(
                job_name=names[i % len(names)],
                poll_interval=args.interval,
                conn_id="rl_bench",
                backend_settings={"conn_id": "rl_bench", "backend": "local", "home": str(home)},
            )
            for i in range(args.local_triggers)
        ]
        fds_before = open_fds()
        figures, results = asyncio.run(run_triggers(triggers, args.warmup, args.window))
        failures = [r for r in results if not isinstance(r, asyncio.CancelledError)]
        if failures:
            raise SystemExit(f"local triggers failed: {failures[:3]}")
    finally:
        stop_local_jobs(home, names)
    polls = args.local_triggers * figures["wall"] / args.interval
    figures.update(fds_before=fds_before, polls=polls)
    return figures


# -------------------------------------------------------------------------------- sagemaker
@contextlib.contextmanager
def moto_process(line_seconds: float) -> Any:
    source = MOTO_SERVER.replace("LINE_SECONDS", repr(line_seconds)).replace("REGION", REGION)
    process = subprocess.Popen(
        [sys.executable, "-c", source],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield f"http://127.0.0.1:{ports['moto']}", f"http://127.0.0.1:{ports['counts']}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def describe_counts(counts_url: str) -> dict[str, int]:
    with urllib.request.urlopen(counts_url) as response:
        counts: dict[str, int] = json.loads(response.read())
        return counts


def create_moto_jobs(moto_url: str, prefix: str, count: int) -> list[str]:
    import boto3

    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_url)
    names = []
    for i in range(count):
        name = f"{prefix}-{i:04d}"
        sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": "123456789012.dkr.ecr.us-west-2.amazonaws.com/rl:latest",
                "TrainingInputMode": "File",
            },
            RoleArn=ROLE,
            OutputDataConfig={"S3OutputPath": "s3://bench/output"},
            ResourceConfig={
                "InstanceType": "ml.m5.large",
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
            },
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
        )
        names.append(name)
    return names


def sagemaker_part(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

    from rl_provider.triggers.training_job import RLTrainingJobTrigger

    results: dict[str, dict[str, float]] = {}
    with moto_process(args.line_seconds) as (moto_url, counts_url):
        os.environ.update(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=moto_url, AWS_DEFAULT_REGION=REGION)
        n = args.sagemaker_triggers
        kinds = {
            "amazon": lambda name: SageMakerTrigger(
                job_name=name,
                job_type="Training",
                waiter_delay=int(args.interval),
                waiter_max_attempts=10_000,
                aws_conn_id=None,
                region_name=REGION,
            ),
            "ours": lambda name: RLTrainingJobTrigger(
                job_name=name,
                poll_interval=args.interval,
                conn_id="rl_bench",
                backend_settings={
                    "conn_id": "rl_bench",
                    "backend": "sagemaker",
                    "region_name": REGION,
                },
            ),
        }
        for kind, build in kinds.items():
            names = create_moto_jobs(moto_url, kind, n)

            window_counts: list[dict[str, int]] = []

            async def polls(kind: str = kind, seen: list[dict[str, int]] = window_counts) -> int:
                counts = await asyncio.to_thread(describe_counts, counts_url)
                seen.append(counts)
                return counts.get(kind, 0)

            say(f"sagemaker: {n} {kind} triggers ...")
            triggers = [build(name) for name in names]
            figures, outcomes = asyncio.run(
                run_triggers(triggers, args.warmup, args.window, polls=polls, ready=12 * n)
            )
            failures = [r for r in outcomes if not isinstance(r, asyncio.CancelledError)]
            if failures:
                raise SystemExit(f"{kind} triggers failed: {failures[:3]}")
            # The CloudWatch calls of the window (the last two counts are its start and end).
            start, end = window_counts[-2], window_counts[-1]
            for operation in ("get_log_events", "describe_log_streams"):
                figures[operation] = float(end.get(operation, 0) - start.get(operation, 0))
            results[kind] = figures
    return results


def report_local(figures: dict[str, float], args: argparse.Namespace) -> None:
    per_poll = figures["cpu"] / figures["polls"]
    at_30 = per_poll * 1000 / 30
    say(
        f"\nlocal: {args.local_triggers} triggers over {args.jobs} real running jobs, "
        f"interval {args.interval:g} s, window {figures['wall']:.1f} s\n"
        f"  CPU {figures['cpu']:.2f} s = {100 * figures['cpu'] / figures['wall']:.1f} % of a core "
        f"at {args.interval:g} s; {1000 * per_poll:.3f} ms per poll\n"
        f"  => 1,000 triggers at 30 s: {100 * at_30:.2f} % of a core (target <= 5 %)\n"
        f"  RSS max {figures['rss']:.0f} MB; open fds max {figures['fds']:.0f} "
        f"(before the triggers {figures['fds_before']:.0f}; "
        f"{(figures['fds'] - figures['fds_before']) / args.local_triggers:.3f} per trigger)\n"
        f"  longest loop iteration {1000 * figures['stall']:.1f} ms of CPU (target <= 100 ms); "
        f"max wall-time lag of a 10 ms timer {1000 * figures['lag']:.1f} ms (while the triggers "
        f"started: {1000 * figures['startup_lag']:.1f} ms)"
    )


def report_sagemaker(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    say(
        f"\nsagemaker (moto): {args.sagemaker_triggers} triggers of each kind, interval "
        f"{args.interval:g} s, a log line every {args.line_seconds:g} s per job"
    )
    per_poll = {}
    for kind, figures in results.items():
        per_poll[kind] = figures["cpu"] / figures["polls"]
        say(
            f"  {kind:7s}: {figures['polls']:.0f} polls, CPU {figures['cpu']:.2f} s, "
            f"{1000 * per_poll[kind]:.3f} ms per poll; fds max {figures['fds']:.0f}; "
            f"RSS max {figures['rss']:.0f} MB; longest loop iteration "
            f"{1000 * figures['stall']:.1f} ms CPU; max timer lag {1000 * figures['lag']:.1f} ms "
            f"(starting: {1000 * figures['startup_lag']:.1f} ms); CloudWatch calls per poll: "
            f"GetLogEvents {figures['get_log_events'] / figures['polls']:.2f}, "
            f"DescribeLogStreams {figures['describe_log_streams'] / figures['polls']:.2f}"
        )
    say(
        f"  CPU per poll ours / Amazon's SageMakerTrigger: "
        f"{per_poll['ours'] / per_poll['amazon']:.2f} (target <= 1.3)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer, shorter")
    parser.add_argument("--jobs", type=int, default=25)
    parser.add_argument("--local-triggers", type=int, default=1000)
    parser.add_argument("--sagemaker-triggers", type=int, default=100)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--line-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--only", choices=["local", "sagemaker"])
    args = parser.parse_args()
    if args.quick:  # checks that the benchmark runs; its windows are too short for the figures
        args.jobs, args.local_triggers, args.sagemaker_triggers = 5, 200, 50
        args.warmup, args.window = 6.0, 10.0
        say("--quick: a smoke run; its figures are noisy (10 s windows): measure without it.")
    IterationClock.install()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    work = Path(tempfile.mkdtemp(prefix="rl-triggerer-scale-"))
    os.environ["RL_PROVIDER_HOME"] = str(work / "home")
    os.environ["AIRFLOW_HOME"] = str(work / "airflow")  # Airflow's import writes there
    # The triggers' log lines (job output streamed into task logs) go to a file, as in a
    # triggerer; the report goes to the terminal.
    global out
    trigger_log = work / "triggers.log"
    saved = os.dup(1), os.dup(2)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    log_fd = os.open(trigger_log, os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        if args.only in (None, "local"):
            report_local(local_part(args, work), args)
        if args.only in (None, "sagemaker"):
            report_sagemaker(sagemaker_part(args), args)
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        lines = trigger_log.read_text(errors="replace").count("iteration")
        say(f"\n(log lines the triggers streamed into their logs: {lines})")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
