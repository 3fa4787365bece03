"""``ResourceConfig`` -> the Ray job's entrypoint resources (docs/RAY.md, "Resources").

The job's driver (the launcher and the entry point) is one process; the workers it starts
(RLlib's env runners, learners) ask Ray for their own resources. So ``InstanceCount`` is 1 and
``InstanceType`` says what the driver reserves: ``ray`` (1 CPU), ``ray.<n>cpu`` or
``ray.<n>cpu.<m>gpu`` (e.g. ``ray.2cpu.1gpu``). The entry point sees them as ``SM_NUM_CPUS`` /
``SM_NUM_GPUS``; it sizes its workers from the cluster (``ray.cluster_resources()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rl_provider.core.images import RAY_INSTANCE_TYPE
from rl_provider.exceptions import RLConfigError


def entrypoint_resources(config: Mapping[str, Any]) -> tuple[float, int]:
    """(entrypoint_num_cpus, entrypoint_num_gpus) for a request's ``ResourceConfig``."""
    instance_type = str(config.get("InstanceType", ""))
    match = RAY_INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        raise RLConfigError(
            f"instance_type {instance_type!r} is not a Ray one: use 'ray' (the driver takes 1 "
            "CPU), 'ray.<n>cpu' or 'ray.<n>cpu.<m>gpu' (e.g. 'ray.2cpu.1gpu')."
        )
    count = config.get("InstanceCount", 1)
    if count != 1:
        raise RLConfigError(
            f"InstanceCount={count!r}: a Ray job has one driver, and its workers spread over the "
            "cluster's nodes on their own; use instance_count=1."
        )
    cpus = float(match["cpus"]) if match["cpus"] else 1.0
    return cpus, int(match["gpus"] or 0)
