"""Import cost of our operator module vs the Amazon provider's SageMaker operators.

Airflow imports every DAG file again and again; what a DAG file imports is paid each time.
Every DAG pays for ``from airflow.sdk import DAG, BaseOperator``; the figure that matters is
what an operator module adds on top. Each measurement is a fresh interpreter (nothing cached in
``sys.modules``) that imports the baseline, then the operator module, timing the two steps
separately, so the added cost is measured directly rather than as a difference of two noisy
totals. Times are CPU time (``time.process_time``: other processes on a busy machine barely
change it, unlike wall time); wall time is printed too. Cases run interleaved; medians.

    .venv/bin/python bench/import_time.py [--repeat 9]

Target: ``rl_provider.operators.train`` adds <= 50 ms and loads none of boto3, botocore, ray,
torch, numpy (nor gymnasium, aiobotocore).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

BASELINE = "from airflow.sdk import DAG, BaseOperator"
MODULES = {
    "ours": "rl_provider.operators.train",
    "amazon": "airflow.providers.amazon.aws.operators.sagemaker",
}
HEAVY = ("boto3", "botocore", "ray", "torch", "numpy", "gymnasium", "aiobotocore")
TARGET_MS = 50.0

_PROBE = """
import importlib, json, sys, time
cpu0, wall0 = time.process_time(), time.perf_counter()
exec({baseline!r})
cpu1, wall1 = time.process_time(), time.perf_counter()
importlib.import_module({module!r})
cpu2, wall2 = time.process_time(), time.perf_counter()
heavy = sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r}))
print(json.dumps({{"base_cpu": cpu1 - cpu0, "added_cpu": cpu2 - cpu1,
                  "base_wall": wall1 - wall0, "added_wall": wall2 - wall1, "heavy": heavy}}))
"""


def measure(module: str) -> dict[str, float | list[str]]:
    code = _PROBE.format(baseline=BASELINE, module=module, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, float | list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="fresh interpreters per module")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float | list[str]]]] = {key: [] for key in MODULES}
    for _ in range(args.repeat):
        for key, module in MODULES.items():
            runs[key].append(measure(module))

    def median_ms(key: str, field: str) -> float:
        return statistics.median(float(run[field]) for run in runs[key]) * 1000  # type: ignore[arg-type]

    print(f"baseline `{BASELINE}`: {median_ms('ours', 'base_cpu'):.0f} ms CPU (median)")
    print(f"{'module':52} {'added CPU ms':>12} {'added wall ms':>13}  heavy modules loaded")
    for key, module in MODULES.items():
        heavy = sorted({name for run in runs[key] for name in run["heavy"]})  # type: ignore[union-attr]
        print(
            f"{module:52} {median_ms(key, 'added_cpu'):12.1f} "
            f"{median_ms(key, 'added_wall'):13.1f}  {', '.join(heavy) or '-'}"
        )
    ours = median_ms("ours", "added_cpu")
    amazon = median_ms("amazon", "added_cpu")
    print(f"repetitions: {args.repeat} fresh interpreters per module, interleaved")
    print(f"ratio amazon / ours (added CPU): {amazon / max(ours, 0.01):.1f}x")
    ours_heavy = any(run["heavy"] for run in runs["ours"])
    ok = ours <= TARGET_MS and not ours_heavy
    print(
        f"target (ours adds <= {TARGET_MS:.0f} ms, no heavy module): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
