"""Airflow's API app with the UI plugin, for route tests: a TestClient and real JWTs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


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
