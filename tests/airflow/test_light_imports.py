"""DAG-facing modules stay light: Airflow imports them at every parse of a DAG file."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import rl_provider.operators
import rl_provider.sensors
import rl_provider.triggers

HEAVY = ("boto3", "botocore", "ray", "torch", "numpy", "gymnasium", "aiobotocore")


def dag_facing_modules() -> list[str]:
    modules = ["rl_provider.hooks.rl", "rl_provider.links", "rl_provider.get_provider_info"]
    for package in (rl_provider.operators, rl_provider.sensors, rl_provider.triggers):
        modules += [
            f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
        ]
    return modules


def test_the_module_list_covers_every_layer():
    modules = dag_facing_modules()
    for expected in (
        "rl_provider.operators.train",
        "rl_provider.sensors.training_job",
        "rl_provider.triggers.training_job",
        "rl_provider.triggers.base",
    ):
        assert expected in modules


@pytest.mark.parametrize("module", dag_facing_modules())
def test_module_loads_no_heavy_package(module):
    code = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = {name.split(".")[0] for name in json.loads(out.stdout.strip().splitlines()[-1])}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_ui_plugin_builds_its_app_only_when_served():
    # Every Airflow component loads plugins; only the API server serves the pages.
    code = (
        "import json, sys\nimport rl_provider.ui.plugin\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded.isdisjoint({*HEAVY, "fastapi"}), sorted(loaded & {*HEAVY, "fastapi"})
