"""Endpoint latency: the CartPole policy behind a local endpoint vs the same policy in-process.

    .venv/bin/python bench/endpoint_latency.py [--requests 3000] [--model-data file://...]
        [--cpu-requests 2000] [--rounds 20]

Without ``--model-data`` it trains the policy first (one tiny PPO iteration of
``dags/cartpole/train.py`` through ``RLEstimator.fit()`` on a throwaway local home), then deploys it
with the built-in RLlib handler and measures, in this one run:

- in-process: ``rllib.predict_fn(observation, policy)``, the handler's own call, no HTTP;
- 1 client: ``LocalBackend.invoke_endpoint`` in a loop (keep-alive connection);
- 8 clients: 8 threads, each with its own keep-alive connection, without pause.

It prints p50/p99 latency and requests/s for each, and the ratios to in-process. Targets on these
2 cores: p50 <= 2 ms, >= 1,000 requests/s.

Then the server's own cost against a floor: a raw asyncio server (another process, this file with
``--floor-server``) running the same ``InferenceHandler`` on the same policy with the least HTTP/1.1
a keep-alive client needs (find the blank line, read Content-Length, one write per response; no
limits, no validation). One client in this process sends the same request over one keep-alive
connection to each, in alternating rounds; the server CPU per request is the server process's
CPU time over the round (``/proc/<pid>/task/*/schedstat``, ns precision) divided by its
requests; medians of the rounds. Target (issue 11): ours <= 1.3x the floor.

Everything it starts is deleted before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
OBSERVATION = [0.01, -0.2, 0.03, 0.25]
BODY = json.dumps(OBSERVATION).encode()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, latencies: list[float], seconds: float) -> dict[str, float | str]:
    return {
        "name": name,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "mean_ms": statistics.fmean(latencies) * 1e3,
        "rps": len(latencies) / seconds,
    }


def train(backend: object, scratch: Path) -> str:
    from rl_provider import RLEstimator

    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=str(ROOT / "dags" / "cartpole"),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        instance_type="local",
        output_path=(scratch / "output").as_uri(),
        backend=backend,
        hyperparameters={
            "iterations": 1,
            "train_batch_size": 256,
            "minibatch_size": 64,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
        },
    )
    estimator.fit(job_name="bench-cartpole", logs=False)
    model_data = estimator.model_data
    assert model_data is not None
    return model_data


def in_process(model_data: str, scratch: Path, requests: int) -> dict[str, float | str]:
    import torch

    from rl_provider.backends.local.transfer import file_path
    from rl_provider.serving import rllib

    torch.set_num_threads(1)  # as the server does
    model_dir = scratch / "in-process"
    with tarfile.open(file_path(model_data)) as tar:
        tar.extractall(model_dir, filter="data")
    policy = rllib.model_fn(str(model_dir))
    for _ in range(200):
        rllib.predict_fn(OBSERVATION, policy)
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        rllib.predict_fn(OBSERVATION, policy)
        latencies.append(time.perf_counter() - t0)
    return summary("in-process predict_fn", latencies, time.perf_counter() - started)


def over_http(
    backend: object, endpoint: str, clients: int, requests: int
) -> dict[str, float | str]:
    import psutil

    from rl_provider.backends.local import LocalBackend

    assert isinstance(backend, LocalBackend)
    server = psutil.Process(backend.describe_endpoint(endpoint).extra["ServerPid"])
    per_client: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        for _ in range(100):  # warm-up: connection, caches
            backend.invoke_endpoint(EndpointName=endpoint, Body=BODY)["Body"].read()
        barrier.wait()
        latencies = per_client[index]
        for _ in range(requests // clients):
            t0 = time.perf_counter()
            answer = backend.invoke_endpoint(EndpointName=endpoint, Body=BODY)["Body"].read()
            latencies.append(time.perf_counter() - t0)
            if b"action" not in answer:
                raise RuntimeError(f"unexpected answer {answer!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    server_before, client_before = server.cpu_times(), os.times()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    server_after, client_after = server.cpu_times(), os.times()
    latencies = [x for samples in per_client for x in samples]
    row = summary(f"HTTP, {clients} client{'s' if clients > 1 else ''}", latencies, seconds)
    # CPU time per request does not depend on what else the machine runs, unlike latency.
    cpu = (server_after.user + server_after.system) - (server_before.user + server_before.system)
    row["server_cpu_us"] = cpu / len(latencies) * 1e6
    cpu = (client_after.user + client_after.system) - (client_before.user + client_before.system)
    row["client_cpu_us"] = cpu / len(latencies) * 1e6
    return row


def floor_server(model_dir: str, code_dir: str) -> int:
    """The floor: the same handler behind the least HTTP/1.1 that serves a keep-alive client."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the endpoint server does
    import asyncio

    from rl_provider.serving.handler import InferenceHandler, InvocationError
    from rl_provider.serving.server import bind_loopback

    try:  # the event loop our server uses, so that the ratio measures the HTTP layer alone
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None

    handler = InferenceHandler.load(Path(model_dir), Path(code_dir), "rllib.py")

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer + data if self.buffer else data
            out = []
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                lines = buffer[:end].split(b"\r\n")
                fields = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    fields[name.strip().lower()] = value.strip()
                length = int(fields.get(b"content-length", b"0"))
                if len(buffer) < end + 4 + length:
                    break
                body = buffer[end + 4 : end + 4 + length]
                buffer = buffer[end + 4 + length :]
                status, produced = 200, b"application/json"
                try:
                    payload, kind = handler.invoke(
                        body,
                        fields.get(b"content-type", b"").decode("latin-1"),
                        fields.get(b"accept", b"").decode("latin-1"),
                    )
                    produced = kind.encode()
                except InvocationError as err:
                    status, payload = err.status_code, err.message.encode()
                out.append(
                    b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (status, produced, len(payload), payload)
                )
            self.buffer = buffer
            if out:
                self.transport.write(b"".join(out))

    sock = bind_loopback()
    print(sock.getsockname()[1], flush=True)

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Floor, sock=sock)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads so far, in ns precision from ``schedstat`` (the
    clock-tick counts of ``/proc/<pid>/stat`` are 10 ms coarse), else from ``stat``."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)


def cpu_per_request(pid: int, port: int, requests: int) -> float:
    """Server CPU microseconds per request: one keep-alive client sends ``requests`` requests."""
    from rl_provider.serving.client import ServerConnection

    connection = ServerConnection(port)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        for _ in range(100):  # warm-up: connection, caches
            connection.request("POST", "/invocations", BODY, headers)
        before = cpu_seconds(pid)
        for _ in range(requests):
            status, _, answer = connection.request("POST", "/invocations", BODY, headers)
            if status != 200 or b"action" not in answer:
                raise RuntimeError(f"unexpected answer {status} {answer!r}")
        after = cpu_seconds(pid)
    finally:
        connection.close()
    return (after - before) / requests * 1e6


def against_floor(
    backend: object, endpoint: str, model_data: str, code: Path, scratch: Path, args: Any
) -> tuple[list[float], list[float]]:
    """Server CPU per request of our endpoint server and of the floor, in alternating rounds."""
    import signal
    import subprocess

    from rl_provider.backends.local import LocalBackend
    from rl_provider.backends.local.transfer import file_path

    assert isinstance(backend, LocalBackend)
    description = backend.describe_endpoint(endpoint)
    ours = (int(description.extra["ServerPid"]), int(description.extra["Url"].rsplit(":", 1)[1]))
    model_dir, code_dir = scratch / "floor" / "model", scratch / "floor" / "code"
    for archive, target in ((file_path(model_data), model_dir), (code, code_dir)):
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    floor = subprocess.Popen(
        [sys.executable, __file__, "--floor-server", str(model_dir), str(code_dir)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, stopped as one below
    )
    try:
        assert floor.stdout is not None
        port = int(floor.stdout.readline())
        mine: list[float] = []
        theirs: list[float] = []
        for round_ in range(args.rounds):
            # ABBA order, so that a machine getting busier or quieter favours neither server.
            if round_ % 2 == 0:
                mine.append(cpu_per_request(ours[0], ours[1], args.cpu_requests))
                theirs.append(cpu_per_request(floor.pid, port, args.cpu_requests))
            else:
                theirs.append(cpu_per_request(floor.pid, port, args.cpu_requests))
                mine.append(cpu_per_request(ours[0], ours[1], args.cpu_requests))
        return mine, theirs
    finally:
        os.killpg(floor.pid, signal.SIGTERM)
        floor.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--model-data", help="a model.tar.gz URI (default: train one)")
    parser.add_argument(
        "--cpu-requests", type=int, default=2000, help="requests per round against the floor"
    )
    parser.add_argument("--rounds", type=int, default=20, help="rounds against the floor")
    parser.add_argument("--floor-server", nargs=2, metavar=("MODEL_DIR", "CODE_DIR"))
    args = parser.parse_args()
    if args.floor_server:
        return floor_server(*args.floor_server)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

    from rl_provider.backends.local import LocalBackend
    from rl_provider.core.model import wait_for_endpoint

    with tempfile.TemporaryDirectory(prefix="rl-bench-endpoint-") as tmp:
        scratch = Path(tmp)
        backend = LocalBackend(scratch / "home")
        model_data = args.model_data or train(backend, scratch)
        code = scratch / "code.tar.gz"
        with tarfile.open(code, "w:gz") as tar:
            tar.add(ROOT / "rl_provider" / "serving" / "rllib.py", arcname="rllib.py")
        backend.create_model(
            ModelName="bench",
            PrimaryContainer={
                "Image": "rl-provider/bench:1",
                "ModelDataUrl": model_data,
                "Environment": {
                    "SAGEMAKER_PROGRAM": "rllib.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": code.as_uri(),
                },
            },
        )
        backend.create_endpoint_config(
            EndpointConfigName="bench",
            ProductionVariants=[
                {"ModelName": "bench", "InitialInstanceCount": 1, "InstanceType": "local"}
            ],
        )
        backend.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        try:
            wait_for_endpoint(backend, "bench", timeout=600)
            rows = [
                in_process(model_data, scratch, args.requests),
                over_http(backend, "bench", 1, args.requests),
                over_http(backend, "bench", 8, args.requests),
            ]
            mine, theirs = against_floor(backend, "bench", model_data, code, scratch, args)
        finally:
            backend.delete_endpoint("bench")

    base = rows[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"CartPole policy, {args.requests} requests each, {os.cpu_count()} CPUs, load {load}")
    print(
        f"{'':24} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p50 x in-process':>17} "
        f"{'server CPU us/req':>18} {'client CPU us/req':>18}"
    )
    for row in rows:
        ratio = float(row["p50_ms"]) / float(base["p50_ms"])
        cpu = (
            f"{row['server_cpu_us']:18.0f} {row['client_cpu_us']:18.0f}"
            if "server_cpu_us" in row
            else f"{'':18} {'':18}"
        )
        print(
            f"{row['name']:24} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['rps']:8.0f} "
            f"{ratio:17.1f} {cpu}"
        )
    single, eight = rows[1], rows[2]
    print(
        f"targets: p50 <= 2 ms: {'met' if float(single['p50_ms']) <= 2 else 'MISSED'} "
        f"({single['p50_ms']:.3f} ms, 1 client); >= 1,000 req/s: "
        f"{'met' if float(eight['rps']) >= 1000 else 'MISSED'} ({eight['rps']:.0f}, 8 clients)"
    )
    print(
        f"in-process / 8-client throughput ratio: {float(base['rps']) / float(eight['rps']):.1f}x"
    )
    ratio = statistics.median(mine) / statistics.median(theirs)
    paired = statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
    print(
        f"server CPU us/request, 1 keep-alive client, {args.rounds} alternating rounds of "
        f"{args.cpu_requests} requests: ours median {statistics.median(mine):.1f} "
        f"(min {min(mine):.1f}, max {max(mine):.1f}); raw asyncio floor median "
        f"{statistics.median(theirs):.1f} (min {min(theirs):.1f}, max {max(theirs):.1f})"
    )
    print(
        f"ours / floor: {ratio:.2f}x (median of the rounds' ratios {paired:.2f}x); "
        f"target <= 1.3x: {'met' if ratio <= 1.3 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
