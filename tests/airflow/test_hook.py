"""RLHook: which backend a connection (or its absence) gives, and the errors for bad ones."""

from __future__ import annotations

import json

import pytest

from rl_provider.backends.local import AsyncLocalBackend, LocalBackend
from rl_provider.exceptions import RLConfigError
from rl_provider.hooks.rl import BackendKind, BackendSettings, RLHook


def set_connection(monkeypatch, conn_id: str, extra: dict) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "rl", "extra": extra})
    )


def test_missing_default_connection_is_the_local_backend_at_the_default_home(rl_home):
    hook = RLHook()
    assert hook.settings == BackendSettings(conn_id="rl_default")
    assert isinstance(hook.backend, LocalBackend)
    assert hook.backend.home == rl_home.resolve()


def test_missing_named_connection_is_an_error(rl_home):
    with pytest.raises(RLConfigError, match=r"'rl_typo' does not exist.*rl_default"):
        RLHook("rl_typo").backend  # noqa: B018


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"backend": "slurm"},
            r"backend extra of connection 'rl_bad': 'slurm': valid values are 'local', 'sagemaker', 'ray'",
        ),
        ({"backend": 3}, r"backend extra of connection 'rl_bad': 3: valid values"),
        ({"hmoe": "/tmp/x"}, r"unknown extras \['hmoe'\]"),
        ({"botocore_config": "retries"}, r"botocore_config='retries': it must be a JSON object"),
    ],
)
def test_bad_extras_are_refused_with_the_allowed_values(monkeypatch, rl_home, extra, message):
    set_connection(monkeypatch, "rl_bad", extra)
    with pytest.raises(RLConfigError, match=message):
        RLHook("rl_bad").backend  # noqa: B018


@pytest.mark.parametrize("key", ["home", "extra__rl__home"])
def test_local_connection_home_and_region(monkeypatch, tmp_path, rl_home, key):
    set_connection(monkeypatch, "rl_mine", {"backend": "LOCAL", key: str(tmp_path / "h")})
    hook = RLHook("rl_mine")
    backend = hook.backend
    assert isinstance(backend, LocalBackend)
    assert backend.home == (tmp_path / "h").resolve()
    assert hook.backend is backend  # built once
    assert isinstance(hook.async_backend, AsyncLocalBackend)
    assert hook.async_backend.backend is backend


def test_settings_round_trip_through_a_dict(monkeypatch, rl_home):
    extra = {
        "backend": "sagemaker",
        "aws_conn_id": "aws_prod",
        "region_name": "eu-west-1",
        "bucket": "models",
        "verify": False,
        "botocore_config": {"retries": {"mode": "standard"}},
    }
    set_connection(monkeypatch, "rl_sm", extra)
    settings = RLHook("rl_sm").settings
    assert settings.backend is BackendKind.SAGEMAKER
    assert settings.region_name == "eu-west-1"
    assert settings.verify is False
    as_dict = settings.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert BackendSettings.from_dict(as_dict) == settings


def test_given_settings_skip_the_connection_lookup(tmp_path, rl_home):
    settings = BackendSettings(conn_id="rl_not_defined_anywhere", home=str(tmp_path / "h2"))
    hook = RLHook("rl_not_defined_anywhere", settings=settings)
    assert hook.backend.home == (tmp_path / "h2").resolve()


def test_test_connection_reports_success_and_failure(monkeypatch, rl_home):
    ok, message = RLHook().test_connection()
    assert ok
    assert message.startswith("local backend ready")
    set_connection(monkeypatch, "rl_bad", {"backend": "nope"})
    ok, message = RLHook("rl_bad").test_connection()
    assert not ok
    assert "valid values" in message
