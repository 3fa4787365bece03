"""Which backend, with which settings: ``BackendKind`` and ``BackendSettings``.

Plain data, read from an Airflow connection (the hook), CLI options or an SDK session, and
carried by triggers in ``serialize()``; ``rl_provider.backends.registry.open_backend`` builds
the backend they name. Light to import (DAG files import it through the hook).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_provider.core.enums import CoercibleEnum
from rl_provider.exceptions import RLConfigError

__all__ = ["DEFAULT_CONN_ID", "BackendKind", "BackendSettings"]

DEFAULT_CONN_ID = "rl_default"
# Extras written by the connection form of Airflow < 2.3 carry this prefix; accept both.
_PREFIX = "extra__rl__"


class BackendKind(CoercibleEnum):
    """Where jobs run: the embedded local backend, AWS SageMaker or a Ray cluster."""

    LOCAL = "local"
    SAGEMAKER = "sagemaker"
    RAY = "ray"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendSettings:
    """Everything needed to build a backend; JSON-safe so triggers can carry it."""

    conn_id: str = DEFAULT_CONN_ID
    backend: BackendKind = BackendKind.LOCAL
    home: str | None = None
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    bucket: str | None = None
    verify: bool | str | None = None
    botocore_config: Mapping[str, Any] | None = None
    address: str | None = None
    runtime_env: Mapping[str, Any] | None = None
    storage: str | None = None
    # The Ray cluster's token (the connection's password). A trigger carries it in its kwargs,
    # which Airflow stores encrypted with the Fernet key; never shown in a repr.
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_extras(
        cls, conn_id: str, extras: Mapping[str, Any], password: str | None = None
    ) -> BackendSettings:
        """Read a connection's extras; unknown keys are refused (a typo must not be ignored)."""
        values = {
            (key[len(_PREFIX) :] if key.startswith(_PREFIX) else key): value
            for key, value in extras.items()
            if value not in (None, "")
        }
        known = {"backend", "home", "aws_conn_id", "region_name", "bucket", "verify"}
        known |= {"botocore_config", "address", "runtime_env", "storage"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RLConfigError(
                f"Connection {conn_id!r} has unknown extras {unknown}: allowed are "
                f"{sorted(known)}. Remove or rename them."
            )
        config = values.get("botocore_config")
        if config is not None and not isinstance(config, Mapping):
            raise RLConfigError(
                f"Connection {conn_id!r} has botocore_config={config!r}: it must be a JSON "
                'object of botocore Config arguments, e.g. {"retries": {"mode": "standard"}}.'
            )
        runtime_env = values.get("runtime_env")
        if runtime_env is not None and not isinstance(runtime_env, Mapping):
            raise RLConfigError(
                f"Connection {conn_id!r} has runtime_env={runtime_env!r}: it must be a JSON "
                'object (Ray\'s runtime_env), e.g. {"pip": ["gymnasium"]}.'
            )
        backend = BackendKind.coerce(
            values.get("backend", BackendKind.LOCAL),
            argument=f"backend extra of connection {conn_id!r}:",
            fix='Fix the connection\'s extra, e.g. {"backend": "local"}.',
        )
        if backend is BackendKind.RAY and not values.get("address"):
            raise RLConfigError(
                f"Connection {conn_id!r} has backend 'ray' without an address: add the Ray job "
                'server\'s URL, e.g. {"backend": "ray", "address": "http://head:8265"}.'
            )
        return cls(
            conn_id=conn_id,
            backend=BackendKind.coerce(
                values.get("backend", BackendKind.LOCAL),
                argument=f"backend extra of connection {conn_id!r}:",
                fix='Fix the connection\'s extra, e.g. {"backend": "local"}.',
            ),
            home=values.get("home"),
            aws_conn_id=values.get("aws_conn_id", "aws_default"),
            region_name=values.get("region_name"),
            bucket=values.get("bucket"),
            verify=values.get("verify"),
            botocore_config=dict(config) if config is not None else None,
            address=values.get("address"),
            runtime_env=dict(runtime_env) if runtime_env is not None else None,
            storage=values.get("storage"),
            token=password,
        )

    def to_dict(self) -> dict[str, Any]:
        """The non-default settings, for a trigger's ``serialize()``."""
        out: dict[str, Any] = {"conn_id": self.conn_id, "backend": self.backend.value}
        for key in (
            "home",
            "region_name",
            "bucket",
            "verify",
            "botocore_config",
            "address",
            "runtime_env",
            "storage",
            "token",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = dict(value) if isinstance(value, Mapping) else value
        out["aws_conn_id"] = self.aws_conn_id
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendSettings:
        conn_id = str(data.get("conn_id", DEFAULT_CONN_ID))
        extras = {k: v for k, v in data.items() if k not in ("conn_id", "token")}
        return cls.from_extras(conn_id, extras, password=data.get("token"))
