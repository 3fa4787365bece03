"""Parse and emit cost of a typed description: this tree's ``core/jobs.py`` vs another revision's.

Every trigger poll turns a DescribeTrainingJob response into a ``TrainingJobDescription``
(``from_api``) and the trigger events and XComs carry ``to_api()``. This times ``from_api`` +
``to_api`` of a full botocore-shaped response (datetimes as tz-aware ``datetime``, four status
transitions, two final metrics, unknown keys) with the current module and with the module of
``--baseline`` (read with ``git show``, imported under another name, against this tree's enums
and exceptions), in the same process, alternating rounds (ABAB) so machine load hits both alike.
Times are CPU time (``time.process_time``); medians over the rounds.

    .venv/bin/python bench/descriptions.py [--baseline 48aa467] [--rounds 21]

``48aa467`` is the last commit before the declarative key mapping (issue 13). Target: ratio
(current / baseline) <= 1.1.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import rl_provider.core.jobs as current

ROOT = Path(__file__).resolve().parent.parent
CALLS = 2000  # from_api + to_api per round
T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def response() -> dict[str, Any]:
    steps = [("Starting", 0, 2), ("Downloading", 2, 3), ("Training", 3, 9), ("Uploading", 9, 10)]
    return {
        "TrainingJobName": "rl-cartpole-2025-03-01-12-00-00-123",
        "TrainingJobArn": "arn:aws:sagemaker:us-west-2:123456789012:training-job/rl-cartpole",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Uploading",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/rl-cartpole/output/model.tar.gz"},
        "HyperParameters": {"sagemaker_program": '"train.py"', "rl.training.iterations": "10"},
        "AlgorithmSpecification": {"TrainingImage": "image:latest", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3Uri": "s3://b/d/"}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": T0,
        "TrainingStartTime": T0 + timedelta(minutes=2),
        "LastModifiedTime": T0 + timedelta(minutes=10),
        "SecondaryStatusTransitions": [
            {
                "Status": status,
                "StartTime": T0 + timedelta(minutes=start),
                "EndTime": T0 + timedelta(minutes=end),
                "StatusMessage": f"{status} the job",
            }
            for status, start, end in steps
        ],
        "FinalMetricDataList": [
            {"MetricName": "episode_reward_mean", "Value": 187.5, "Timestamp": T0},
            {"MetricName": "episode_reward_max", "Value": 500.0, "Timestamp": T0},
        ],
        "EnableNetworkIsolation": False,
        "ProfilingStatus": "Disabled",
        "ResponseMetadata": {"RequestId": "0f3a8c1e", "HTTPStatusCode": 200},
    }


def load_baseline(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:rl_provider/core/jobs.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="rl-bench-jobs-")) / "baseline_jobs.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_jobs", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building a class
    spec.loader.exec_module(module)
    return module


def per_call_us(module: ModuleType, data: dict[str, Any], calls: int) -> float:
    cls = module.TrainingJobDescription
    start = time.process_time()
    for _ in range(calls):
        cls.from_api(data).to_api()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="48aa467", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=21, help=f"of {CALLS} calls each")
    args = parser.parse_args()
    baseline = load_baseline(args.baseline)
    data = response()
    # Both must read the response the same way, or the comparison means nothing.
    ours = current.TrainingJobDescription.from_api(data).to_api()
    if ours != baseline.TrainingJobDescription.from_api(data).to_api():
        raise SystemExit("the two modules emit different dicts for the same response")
    times: dict[str, list[float]] = {"current": [], "baseline": []}
    per_call_us(current, data, CALLS)  # warm-up
    per_call_us(baseline, data, CALLS)
    for _ in range(args.rounds):
        times["current"].append(per_call_us(current, data, CALLS))
        times["baseline"].append(per_call_us(baseline, data, CALLS))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = [a / b for a, b in zip(times["current"], times["baseline"], strict=True)]
    print(f"from_api + to_api of a TrainingJobDescription, {args.rounds} rounds x {CALLS}")
    print(f"  baseline ({args.baseline}): {medians['baseline']:.1f} us CPU per call (median)")
    print(f"  current:                  {medians['current']:.1f} us CPU per call (median)")
    print(
        f"  ratio current/baseline: {medians['current'] / medians['baseline']:.3f} "
        f"(per-round ratios: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
