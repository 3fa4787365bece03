"""Airflow's API app with the UI plugin, for route tests: a TestClient and real JWTs."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Serves a training job's model.tar.gz (which holds policy.txt): answers what it was sent.
ECHO_HANDLER = """
def model_fn(model_dir):
    return open(model_dir + "/policy.txt").read()

def predict_fn(data, model):
    return {"policy": model, "echo": data}
"""


def api_client() -> Iterator[Any]:
    """Airflow's own API app (``create_app("core")``: auth manager, plugins) in a TestClient."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "viewer:viewer,op:user")
        patch.setenv("AIRFLOW__API__BASE_URL", "")
        # A 64-byte secret: PyJWT warns about shorter HMAC keys.
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "rl-provider-test-" * 5)
        with TestClient(create_app("core"), base_url="http://testserver") as client:
            yield client


def token(role: str) -> str:
    """A JWT the simple auth manager issues for a user of ``role`` (``""``: no role)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role)))


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def serve_job(backend: Any, job: str, workdir: Path, *, model: str, endpoint: str) -> None:
    """Model ``model`` of ``job``'s artifacts (ECHO_HANDLER) behind endpoint ``endpoint``."""
    from rl_provider.core.model import wait_for_endpoint

    archive = workdir / "echo-code.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = ECHO_HANDLER.encode()
        info = tarfile.TarInfo("echo.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    backend.create_model(
        ModelName=model,
        PrimaryContainer={
            "Image": "rl-provider/handler-test:1",
            "ModelDataUrl": backend.describe_training_job(job).model_artifacts,
            "Environment": {
                "SAGEMAKER_PROGRAM": "echo.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": archive.as_uri(),
            },
        },
    )
    backend.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-config",
        ProductionVariants=[
            {"ModelName": model, "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    backend.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-config")
    wait_for_endpoint(backend, endpoint, timeout=120)
