"""Importing the package must stay cheap: Airflow parses DAG files constantly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("airflow", "boto3", "botocore", "ray", "torch", "numpy", "gymnasium")


@pytest.mark.parametrize(
    "statement",
    [
        "import rl_provider",
        "import rl_provider.core",
        "from rl_provider import RLEstimator, RLModel, RLToolkit, TrainingJobDescription",
        "import rl_provider.core.estimator, rl_provider.core.model, rl_provider.core.packaging",
    ],
)
def test_core_loads_no_heavy_module(statement):
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_lazy_names_resolve():
    import rl_provider

    assert rl_provider.RLEstimator.__name__ == "RLEstimator"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rl_provider.Nope  # noqa: B018
