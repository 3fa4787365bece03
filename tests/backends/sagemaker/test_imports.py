"""Importing the SageMaker backend loads no AWS SDK: the hook imports it while Airflow parses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_importing_the_backend_loads_no_aws_sdk():
    code = (
        "import rl_provider.backends.sagemaker, json, sys\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert loaded.isdisjoint({"boto3", "botocore", "aiobotocore", "airflow"}), loaded


def test_no_region_anywhere_is_a_config_error(monkeypatch, tmp_path):
    from rl_provider.backends.sagemaker import SageMakerBackend
    from rl_provider.exceptions import RLConfigError

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no region from an EC2 host either
    with pytest.raises(RLConfigError, match="No AWS region: pass region_name="):
        SageMakerBackend().client("sagemaker")


def test_the_backends_implement_the_contract():
    from rl_provider.backends.base import AsyncBackend, Backend
    from rl_provider.backends.sagemaker import AsyncSageMakerBackend, SageMakerBackend

    assert isinstance(SageMakerBackend(region_name="us-west-2"), Backend)
    for method in ("describe_training_job", "read_logs", "describe_endpoint"):
        assert callable(getattr(AsyncSageMakerBackend, method))
        assert hasattr(AsyncBackend, method)
