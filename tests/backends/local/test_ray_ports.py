"""A local RLlib job's Ray listens on loopback only, on free ports (docs/DESIGN.md, "Local Ray on
loopback").

Two real PPO jobs (``dags/cartpole/train.py``) train at once through one ``LocalBackend``; while
both train, every listening socket of every process of each job (runner, entry point, GCS,
raylet, dashboard, autoscaler monitor, agents, workers) is read with psutil.
"""

from __future__ import annotations

import ipaddress
import os
import tarfile

import psutil
import pytest

from rl_provider.backends.local import LocalBackend
from rl_provider.backends.local.runner import LOCAL_RAY_ENV, local_ray_env
from rl_provider.backends.local.transfer import file_path
from rl_provider.core.enums import TrainingJobStatus
from tests.backends.local.test_rllib import QUICK, estimator, wait_for

pytest.importorskip("ray", reason="the rllib extra is not installed")

JOBS = ("ppo-ports-a", "ppo-ports-b")
# Ray 2.60's head processes with a Prometheus server of their own (fixed ports 44227/44217 before).
METRIC_SERVERS = ("dashboard/dashboard.py", "autoscaler/_private/monitor.py")


def job_processes(backend: LocalBackend, name: str) -> list[psutil.Process]:
    """The runner and everything under it, plus whatever sits in the entry point's group."""
    row = backend.store.get_job(name)
    assert row.runner_pid is not None
    assert row.entry_pid is not None
    runner = psutil.Process(row.runner_pid)
    found = {p.pid: p for p in [runner, *runner.children(recursive=True)]}
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == row.entry_pid:
                found.setdefault(process.pid, process)
        except (ProcessLookupError, PermissionError):
            continue
    return list(found.values())


def listening(processes: list[psutil.Process]) -> list[tuple[str, int, str]]:
    """(address, port, command line) of every listening TCP/UDP-bound inet socket."""
    sockets = []
    for process in processes:
        try:
            command = " ".join(process.cmdline())
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN:
                sockets.append((conn.laddr.ip, conn.laddr.port, command))
    return sockets


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    # An AF_INET6 socket bound to ::ffff:127.0.0.1 (Ray's gRPC servers) takes loopback only.
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


@pytest.mark.slow
def test_two_concurrent_jobs_listen_on_loopback_only_on_distinct_ports(tmp_path):
    backend = LocalBackend(tmp_path / "home", stop_grace_seconds=60.0)
    for name in JOBS:
        estimator(backend, **{**QUICK, "iterations": 10_000}).fit(job_name=name, wait=False)
    try:
        for name in JOBS:
            wait_for(
                lambda name=name: any(
                    line.startswith("Iteration 1:") for line in backend.read_logs(name)[0]
                ),
                timeout=300.0,
            )
        # Both jobs train now, each with its whole Ray up.
        sockets = {name: listening(job_processes(backend, name)) for name in JOBS}
    finally:
        for name in JOBS:
            backend.stop_training_job(name)
    for name in JOBS:
        wait_for(lambda name=name: backend.describe_training_job(name).is_terminal)

    for name, found in sockets.items():
        exposed = [(a, p, c[:100]) for a, p, c in found if not is_loopback(a)]
        assert not exposed, f"{name} listens beyond loopback: {exposed}"
        for server in METRIC_SERVERS:
            assert any(server in command for _, _, command in found), (name, server, found)
    ports = {name: {port for _, port, _ in found} for name, found in sockets.items()}
    assert not ports[JOBS[0]] & ports[JOBS[1]], "a port both jobs listen on is a fixed port"
    for name in JOBS:
        job = backend.describe_training_job(name)
        assert job.training_job_status is TrainingJobStatus.STOPPED, job.failure_reason
        # Ray's daemons stay up while the driver saves (a SIGTERM to the job's whole group
        # killed them, and Ray the driver, mid-save).
        with tarfile.open(file_path(job.model_data)) as tar:
            assert "policy.json" in tar.getnames()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, LOCAL_RAY_ENV),
        ({"RAY_ADDRESS": "local"}, LOCAL_RAY_ENV),
        # The job's own choice wins.
        ({"DASHBOARD_METRIC_PORT": "9000"}, {**LOCAL_RAY_ENV, "DASHBOARD_METRIC_PORT": "9000"}),
        # Joining a Ray that runs already: its driver registers the node's own IP, untouched.
        ({"RAY_ADDRESS": "auto"}, {}),
        ({"RAY_ADDRESS": "10.0.0.5:6379"}, {}),
    ],
)
def test_local_ray_env_applies_to_a_ray_of_the_jobs_own(environment, expected):
    env = local_ray_env({"PATH": "/usr/bin", **environment})
    assert env == {"PATH": "/usr/bin", **environment, **expected}
