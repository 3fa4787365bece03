"""The provider as Airflow sees it: schema, entry point, ``airflow providers list``, the form."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rl_provider.get_provider_info import get_provider_info

INFO = get_provider_info()


def test_provider_info_matches_airflows_schema():
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(INFO, schema)


@pytest.mark.parametrize("section", ["hooks", "operators", "sensors", "triggers"])
def test_every_listed_module_imports(section):
    modules = [m for entry in INFO[section] for m in entry["python-modules"]]
    assert modules
    for module in modules:
        importlib.import_module(module)


def test_links_and_hook_classes_resolve():
    from airflow.sdk import BaseHook, BaseOperatorLink
    from airflow.sdk.module_loading import import_string

    for path in INFO["extra-links"]:
        link = import_string(path)
        assert issubclass(link, BaseOperatorLink)
        assert link().name
    [connection] = INFO["connection-types"]
    hook = import_string(connection["hook-class-name"])
    assert issubclass(hook, BaseHook)
    assert hook.conn_type == connection["connection-type"] == "rl"
    assert hook.default_conn_name == "rl_default"
    assert hook.hook_name == connection["hook-name"]


@pytest.mark.slow
def test_airflow_lists_the_provider_and_its_connection_form(airflow_db):
    """In fresh processes, as a user's ``airflow`` command and the API server load it."""
    env = dict(os.environ)
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    # Airflow may log a line to stdout first; the listing is the JSON line.
    [listing] = [x for x in listed.stdout.splitlines() if x.startswith("[{")]
    packages = {p["package_name"]: p for p in json.loads(listing)}
    assert "airflow-provider-rl" in packages
    assert packages["airflow-provider-rl"]["version"] == INFO["versions"][0]

    probe = """
import json
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
hook = pm.hooks["rl"]
print(json.dumps({
    "hook": [hook.hook_class_name, hook.connection_type, hook.hook_name],
    "widgets": sorted(k for k in pm.connection_form_widgets if k.startswith("extra__rl__")),
    "behaviour": pm.field_behaviours.get("rl"),
    "links": sorted(l for l in pm.extra_links_class_names if l.startswith("rl_provider")),
    "triggers": sorted(t.trigger_class_name for t in pm.trigger if t.package_name == "airflow-provider-rl"),
    "backend_field": pm.connection_form_widgets["extra__rl__backend"].field,
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["hook"] == ["rl_provider.hooks.rl.RLHook", "rl", INFO["name"]]
    assert seen["widgets"] == [
        f"extra__rl__{name}"
        for name in (
            "address",
            "aws_conn_id",
            "backend",
            "bucket",
            "home",
            "region_name",
            "runtime_env",
            "storage",
        )
    ]
    assert seen["behaviour"]["hidden_fields"] == ["host", "schema", "login", "port"]
    assert seen["behaviour"]["relabeling"] == {"password": "Ray token"}
    assert seen["links"] == sorted(INFO["extra-links"])
    assert seen["triggers"] == sorted(INFO["triggers"][0]["python-modules"])
    # The form's Backend dropdown: a real default, no "null" entry.
    backend_field = seen["backend_field"]
    assert backend_field["value"] == "local"
    assert backend_field["schema"]["enum"] == ["local", "sagemaker", "ray"]
    assert backend_field["schema"]["type"] == "string"
