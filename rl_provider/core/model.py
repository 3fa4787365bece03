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
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider.core import images, toolkits
from rl_provider.core.enums import EndpointStatus, RLFramework, RLToolkit
from rl_provider.core.jobs import ContainerDefinition, EndpointDescription
from rl_provider.core.naming import base_name_from_image, name_from_base, validate_name
from rl_provider.core.packaging import build_sourcedir
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend
    from rl_provider.core.estimator import RLEstimator
    from rl_provider.predictor import RLPredictor

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

    # ------------------------------------------------------------------------------ deploy
    def upload_code(self) -> None:
        """Package new inference code (if any) and hand it to the backend."""
        if self.code is None or self.code_uri is None:
            return
        # build_sourcedir() validates the code arguments before it writes anything.
        with tempfile.TemporaryDirectory(prefix="rl-provider-model-") as tmp:
            archive = build_sourcedir(
                self.code.entry_point, self.code.source_dir, self.code.dependencies, Path(tmp)
            )
            self._require_backend().upload_code(archive.path, self.code_uri)

    def create(self, instance_type: str | None = None) -> None:
        """CreateModel on the backend; an existing model with the same definition is reused."""
        backend = self._require_backend()
        request = self.create_model_request(instance_type)
        try:
            existing = backend.describe_model(self.name)
        except ModelNotFoundError:
            self.upload_code()
            backend.create_model(**request)
            return
        if (
            existing.primary_container.to_api()
            != ContainerDefinition.from_api(request["PrimaryContainer"]).to_api()
        ):
            raise ResourceExistsError(
                f"Model {self.name!r} exists with a different container; pick another name."
            )

    def deploy(
        self,
        initial_instance_count: int,
        instance_type: str,
        endpoint_name: str | None = None,
        update_endpoint: bool = False,
        wait: bool = True,
    ) -> RLPredictor:
        """Create (or, with ``update_endpoint``, update blue/green) an endpoint for this model.

        Everything is checked before anything is created: an existing endpoint without
        ``update_endpoint=True`` is refused before the model and endpoint config exist.
        """
        from rl_provider.predictor import RLPredictor

        backend = self._require_backend()
        if (
            isinstance(initial_instance_count, bool)
            or not isinstance(initial_instance_count, int)
            or initial_instance_count < 1
        ):
            raise RLConfigError(
                f"initial_instance_count={initial_instance_count!r}: pass a positive int "
                "(the local backend serves with one server whatever the count)."
            )
        endpoint_name = validate_name(endpoint_name or self.name, kind="endpoint name")
        try:
            current = backend.describe_endpoint(endpoint_name)
        except EndpointNotFoundError:
            exists = False
        else:
            exists = True
            if not update_endpoint:
                raise ResourceExistsError(
                    f"Endpoint {endpoint_name!r} exists: pass update_endpoint=True to replace its "
                    "model blue/green, or choose another endpoint_name."
                )
            if current.endpoint_status is not EndpointStatus.IN_SERVICE:
                # SageMaker updates only InService endpoints; refusing here, not in
                # update_endpoint, leaves no model or endpoint config behind.
                raise RLConfigError(
                    f"Endpoint {endpoint_name!r} is {current.endpoint_status.value}: only an "
                    "InService endpoint can be updated; wait for it (or delete and recreate a "
                    "Failed one)."
                )
        self.create(instance_type)
        config_name = name_from_base(endpoint_name)
        backend.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": self.name,
                    "InitialInstanceCount": initial_instance_count,
                    "InstanceType": instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        if exists:
            backend.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
        else:
            backend.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
        if wait:
            wait_for_endpoint(backend, endpoint_name, config_name)
        return RLPredictor(endpoint_name, backend)

    def _require_backend(self) -> Backend:
        if self.backend is None:
            raise RLConfigError(
                "This model has no backend: create it from an estimator with a backend, or set "
                "model.backend."
            )
        backend: Backend = self.backend
        return backend


def wait_for_endpoint(
    backend: Backend,
    endpoint_name: str,
    config_name: str | None = None,
    poll: float | None = None,
    timeout: float = 1800.0,
) -> EndpointDescription:
    """Block until the endpoint serves ``config_name`` (or fails); raise on failure.

    ``poll`` defaults to the backend's ``poll_interval`` (SageMaker endpoints take minutes: no
    reason to describe them several times a second). ``timeout`` defaults to 30 minutes, the
    SDK's endpoint waiter. A failed update leaves the endpoint InService on its previous config
    (SageMaker rule): that raises too, with the reason.
    """
    if poll is None:
        poll = backend.poll_interval
    deadline = time.monotonic() + timeout
    while True:
        description = backend.describe_endpoint(endpoint_name)
        status = description.endpoint_status
        if status.is_failure():
            raise BackendError(
                f"Endpoint {endpoint_name} is {status.value}: {description.failure_reason}"
            )
        if status is EndpointStatus.IN_SERVICE:
            if config_name is None or description.endpoint_config_name == config_name:
                return description
            raise BackendError(
                f"Endpoint {endpoint_name} still serves {description.endpoint_config_name}, "
                f"not {config_name}: {description.failure_reason}"
            )
        if time.monotonic() > deadline:
            raise BackendError(
                f"Endpoint {endpoint_name} is still {status.value} after {timeout:.0f} s: check "
                "its server log, then wait longer or delete it."
            )
        time.sleep(poll)


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
