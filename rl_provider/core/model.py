"""``RLModel``: a trained policy as SageMaker's CreateModel takes it.

``RLEstimator.create_model()`` picks the serving stack as SDK v2 did, and goes beyond it for Ray:

==================  ===============================================  ==========================
estimator           model                                            code in the container
==================  ===============================================  ==========================
custom image_uri    the same image, generic framework model          training code (or new)
coach/ray + TF      TensorFlow Serving (SDK: ``TensorFlowModel``)    none: SavedModel only
coach + MXNet       MXNet serving (SDK: ``MXNetModel``, py3)         training sourcedir reused
ray (any)           PyTorch inference image                          built-in RLlib handler
                    (SDK: NotImplementedError)                       or the user's entry_point
==================  ===============================================  ==========================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider.core import images, toolkits
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.naming import base_name_from_image, name_from_base, validate_name
from rl_provider.exceptions import RLConfigError

if TYPE_CHECKING:
    from rl_provider.core.estimator import RLEstimator

log = logging.getLogger(__name__)

# The built-in RLlib inference handler shipped as a model's code (rl_provider/serving/rllib.py).
RLLIB_HANDLER = Path(__file__).resolve().parent.parent / "serving" / "rllib.py"

# TensorFlowModel maps the container log level to TF Serving's nginx level (SDK v2).
_TFS_LOG_LEVEL_PARAM = "SAGEMAKER_TFS_NGINX_LOGLEVEL"
_TFS_LOG_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "crit",
}


class ModelKind(StrEnum):
    CUSTOM = "custom"
    TENSORFLOW_SERVING = "tensorflow-serving"
    MXNET = "mxnet"
    PYTORCH = "pytorch"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCode:
    """Code a model needs packaged and uploaded before CreateModel (none when reused)."""

    entry_point: str
    source_dir: str | None = None
    dependencies: tuple[str, ...] = ()


@dataclass(kw_only=True)
class RLModel:
    """A deployable model. ``prepare_container_def()`` is pure; ``deploy()`` uses the backend."""

    name: str
    model_data: str
    kind: ModelKind
    role: str | None = None
    image_uri: str | None = None
    framework_version: str | None = None
    py_version: str | None = None
    program: str | None = None
    code_uri: str | None = None
    code: ModelCode | None = None
    container_log_level: int = logging.INFO
    environment: dict[str, str] = field(default_factory=dict)
    vpc_config: dict[str, list[str]] | None = None
    region: str | None = None
    backend: Any = None

    def image(self, instance_type: str | None = None, region: str | None = None) -> str:
        if self.image_uri:
            return self.image_uri
        if instance_type is None:
            raise RLConfigError(
                "Must supply either an instance type (for choosing CPU vs GPU) or an image URI."
            )
        framework = {
            ModelKind.TENSORFLOW_SERVING: "tensorflow",
            ModelKind.MXNET: "mxnet",
            ModelKind.PYTORCH: "pytorch",
        }[self.kind]
        return images.retrieve(
            framework,
            region or self.region or "us-west-2",
            self.framework_version or "",
            instance_type,
            scope="inference",
            py_version=self.py_version,
        )

    def environment_for(self, region: str | None = None) -> dict[str, str]:
        """The container's environment, SDK keys first, the user's ``environment`` last."""
        env: dict[str, str] = {}
        if self.kind is ModelKind.TENSORFLOW_SERVING:
            level = _TFS_LOG_LEVELS.get(self.container_log_level)
            if level is not None:
                env[_TFS_LOG_LEVEL_PARAM] = level
        elif self.program is not None:
            env["SAGEMAKER_PROGRAM"] = self.program
            if self.code_uri is not None:
                env["SAGEMAKER_SUBMIT_DIRECTORY"] = self.code_uri
            env["SAGEMAKER_CONTAINER_LOG_LEVEL"] = str(self.container_log_level)
            env["SAGEMAKER_REGION"] = region or self.region or "us-west-2"
        env.update(self.environment)
        return env

    def prepare_container_def(
        self, instance_type: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """``{"Image", "Environment", "ModelDataUrl"}`` exactly as CreateModel takes it."""
        return {
            "Image": self.image(instance_type, region),
            "Environment": self.environment_for(region),
            "ModelDataUrl": self.model_data,
        }

    def create_model_request(
        self, instance_type: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """The exact ``CreateModel`` request."""
        request: dict[str, Any] = {
            "ModelName": self.name,
            "PrimaryContainer": self.prepare_container_def(instance_type, region),
        }
        if self.role:
            request["ExecutionRoleArn"] = self.role
        if self.vpc_config:
            request["VpcConfig"] = {k: list(v) for k, v in self.vpc_config.items()}
        return request


def _model_code_uri(estimator: RLEstimator, model_name: str) -> str | None:
    root = estimator._code_root()
    return None if root is None else f"{root}/{model_name}/source/sourcedir.tar.gz"


def model_for_estimator(
    estimator: RLEstimator,
    *,
    role: str | None = None,
    entry_point: str | None = None,
    source_dir: str | None = None,
    dependencies: Sequence[str] | None = None,
    name: str | None = None,
    image_uri: str | None = None,
    environment: Mapping[str, str] | None = None,
    vpc_config_override: Mapping[str, Sequence[str]] | None = None,
) -> RLModel:
    """``RLEstimator.create_model()``: the SDK's branches plus deployable Ray policies."""
    job = estimator.latest_training_job
    if job is None:
        raise RLConfigError(
            "This estimator has no training job yet: call fit() or RLEstimator.attach(job_name) "
            "before create_model()."
        )
    if not entry_point and (source_dir or dependencies):
        raise RLConfigError("Please provide an `entry_point` with source_dir/dependencies.")
    model_data = estimator.model_data
    if model_data is None:
        raise RLConfigError(f"Training job {job.name} has no model artifact location.")
    if name is None:
        base = estimator.base_job_name or base_name_from_image(estimator.training_image_uri())
        name = name_from_base(base)
    validate_name(name, kind="model name")
    if vpc_config_override is not None:
        vpc = {k: list(v) for k, v in vpc_config_override.items()} or None
    elif estimator.subnets and estimator.security_group_ids:
        vpc = {
            "Subnets": list(estimator.subnets),
            "SecurityGroupIds": list(estimator.security_group_ids),
        }
    else:
        vpc = None
    common: dict[str, Any] = {
        "name": name,
        "model_data": model_data,
        "role": role or estimator.role,
        "container_log_level": estimator.container_log_level,
        "environment": dict(environment or {}),
        "vpc_config": vpc,
        "region": estimator.region,
        "backend": estimator.backend,
    }
    if entry_point:
        # New inference code: packaged under the model's own prefix (SDK: repacked per model).
        code = ModelCode(
            entry_point=entry_point, source_dir=source_dir, dependencies=tuple(dependencies or ())
        )
        program = entry_point if source_dir else os.path.basename(entry_point)
        code_fields: dict[str, Any] = {
            "program": program,
            "code": code,
            "code_uri": _model_code_uri(estimator, name),
        }
    else:
        code_fields = {
            "program": estimator._program_name(),
            "code_uri": estimator.code_uri(job.name),
        }

    image = image_uri or estimator.image_uri
    if image:
        return RLModel(kind=ModelKind.CUSTOM, image_uri=image, **common, **code_fields)
    toolkit, version, framework = estimator._identity()
    if toolkit is RLToolkit.RAY:
        if not entry_point:
            code_fields = {
                "program": RLLIB_HANDLER.name,
                "code": ModelCode(entry_point=str(RLLIB_HANDLER)),
                "code_uri": _model_code_uri(estimator, name),
            }
        pytorch = toolkits.framework_version(toolkit, version, framework)
        if framework is not RLFramework.PYTORCH or pytorch is None:
            pytorch = toolkits.RAY_SERVING_PYTORCH_VERSION
        return RLModel(
            kind=ModelKind.PYTORCH,
            framework_version=pytorch,
            py_version="py3" if pytorch.startswith("1.") else None,
            **common,
            **code_fields,
        )
    if framework is RLFramework.TENSORFLOW:
        if entry_point:
            log.warning("TensorFlow Serving models take no inference code: ignoring entry_point.")
        return RLModel(
            kind=ModelKind.TENSORFLOW_SERVING,
            framework_version=estimator.framework_version,
            **common,
        )
    if framework is RLFramework.MXNET:
        return RLModel(
            kind=ModelKind.MXNET,
            framework_version=estimator.framework_version,
            py_version="py3",
            **common,
            **code_fields,
        )
    raise RLConfigError(f"Unknown RLFramework {framework!r}: valid values are tensorflow, mxnet.")
