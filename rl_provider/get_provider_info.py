"""Target of the ``apache_airflow_provider`` entry point: what Airflow shows about us."""

from __future__ import annotations

from typing import Any

from rl_provider import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-rl",
        "name": "Reinforcement Learning (rl_provider)",
        "description": "Train, evaluate and deploy RL policies on a schedule "
        "(RLEstimator on a local or SageMaker backend).",
        "versions": [__version__],
    }
