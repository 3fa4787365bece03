"""Disk use and packaging time of a large model on the local backend (issue 11, point 6).

    .venv/bin/python bench/local_model_disk.py [--megabytes 200]

Trains one job (on a throwaway home) whose entry point writes ``--megabytes`` of random bytes
(incompressible: the worst case) into ``SM_MODEL_DIR``, then prints, measured in this one run:

- packaging: seconds from the job's Uploading transition to its end (archiving + publishing);
- disk: bytes of every file under the home once the job ended (published artifacts included),
  and that figure divided by the model's size: how many copies of the model the job keeps.

Target: one copy (ratio ~1.0). The home is deleted before it exits.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

# Any Ray 2 estimator will do: the entry point only writes bytes.
ESTIMATOR: dict[str, Any] = {
    "entry_point": "train.py",
    "toolkit": "ray",
    "toolkit_version": "2.60.0",
    "framework": "pytorch",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    size = args.megabytes << 20

    from rl_provider import RLEstimator
    from rl_provider.backends.local import LocalBackend

    root = Path(tempfile.mkdtemp(prefix="rl-disk-bench-"))
    try:
        src = root / "src"
        src.mkdir()
        (src / "train.py").write_text(
            textwrap.dedent(
                f"""
                import os
                with open(os.environ["SM_MODEL_DIR"] + "/weights.bin", "wb") as f:
                    for _ in range({size >> 20}):
                        f.write(os.urandom(1 << 20))
                """
            )
        )
        backend = LocalBackend(root / "home")
        estimator = RLEstimator(source_dir=str(src), backend=backend, **ESTIMATOR)
        started = time.monotonic()
        estimator.fit(job_name="disk-bench", logs=False)
        total = time.monotonic() - started
        description = backend.describe_training_job("disk-bench")
        uploading = next(
            t for t in description.secondary_status_transitions if t.status.value == "Uploading"
        )
        packaging = (uploading.end_time - uploading.start_time).total_seconds()
        used = sum(p.stat().st_size for p in backend.home.rglob("*") if p.is_file())
        print(
            f"model: {args.megabytes} MB of random bytes; job "
            f"{description.training_job_status.value}"
        )
        print(f"job wall time: {total:.1f} s; packaging (Uploading): {packaging:.1f} s")
        print(
            f"disk under the home after the job: {used / 2**20:.0f} MB "
            f"= {used / size:.2f}x the model"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
