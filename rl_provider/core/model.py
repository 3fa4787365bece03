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

import importlib.metadata
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
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.jobs import ContainerDefinition, EndpointDescription
from rl_provider.core.lifecycle import Outcome, plan_deploy, production_variant, wait_for_outcome
from rl_provider.core.naming import base_name_from_image, name_from_base, validate_name
from rl_provider.core.packaging import (
    MODEL_CODE_DIR,
    build_sourcedir,
    safe_extract,
    validate_source,
)
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
    RLMissingArgumentError,
)

if TYPE_CHECKING:
    from rl_provider.backends.base import Backend
    from rl_provider.core.estimator import RLEstimator
    from rl_provider.predictor import RLPredictor

log = logging.getLogger(__name__)

# The built-in RLlib inference handler shipped as a model's code (rl_provider/serving/rllib.py).
RLLIB_HANDLER = Path(__file__).resolve().parent.parent / "serving" / "rllib.py"
# entry_point= this name selects the built-in handler for any serving image (e.g. a Ray job
# trained on a custom image, served on a PyTorch inference image).
BUILTIN_RLLIB_ENTRY_POINT = "rl_provider.serving.rllib"
# Where the serving container finds repacked code (model.tar.gz's code/, SDK v2).
REPACKED_SUBMIT_DIRECTORY = f"/opt/ml/model/{MODEL_CODE_DIR}"

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
    """Code a model needs packaged before CreateModel (none when the training code is reused).

    ``source_dir`` is a local directory or the URI of a ``sourcedir.tar.gz`` (a training job's
    code, after ``attach()``); ``requirements`` is written as ``requirements.txt`` beside it.
    """

    entry_point: str
    source_dir: str | None = None
    dependencies: tuple[str, ...] = ()
    requirements: str | None = None

    @property
    def is_uri(self) -> bool:
        return self.source_dir is not None and "://" in self.source_dir

    def stage(self, scratch: Path) -> Path | str:
        """The code as a local ``sourcedir.tar.gz`` or directory, or the URI it already has."""
        if self.is_uri:
            return str(self.source_dir)
        archive = build_sourcedir(
            self.entry_point, self.source_dir, self.dependencies, scratch / "archive"
        )
        if self.requirements is None:
            return archive.path
        code = scratch / "code"
        safe_extract(archive.path, code)
        (code / "requirements.txt").write_text(self.requirements, encoding="utf-8")
        return code


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
    # The training artifact the code is repacked into (``model_data`` is then the result).
    repack_from: str | None = None
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
        """Package new inference code (if any) and hand it to the backend.

        A repacked model gets ``model.tar.gz`` = the training artifact + the code under
        ``code/`` (SDK v2's repacking for framework models), on every backend.
        """
        if self.repack_from is not None and self.code is not None:
            with tempfile.TemporaryDirectory(prefix="rl-provider-model-") as tmp:
                staged = self.code.stage(Path(tmp))
                self._require_backend().repack_model(self.repack_from, staged, self.model_data)
            return
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
            current: EndpointDescription | None = backend.describe_endpoint(endpoint_name)
        except EndpointNotFoundError:
            current = None
        if current is not None and not update_endpoint:
            raise ResourceExistsError(
                f"Endpoint {endpoint_name!r} exists: pass update_endpoint=True to replace its "
                "model blue/green, or choose another endpoint_name."
            )
        # Planned (the InService rule checked) before the model exists: nothing left behind.
        plan = plan_deploy(endpoint_name, current)
        self.create(instance_type)
        plan.start(backend, [production_variant(self.name, initial_instance_count, instance_type)])
        config_name = plan.config_name
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
    interval = backend.poll_interval if poll is None else poll

    def pause(description: EndpointDescription) -> bool:
        time.sleep(interval)
        return True

    outcome = wait_for_outcome(
        backend,
        endpoint_name,
        endpoint_config_name=config_name,
        deadline=time.time() + timeout,
        pause=pause,
    )
    if outcome is None or outcome.outcome is Outcome.TIMEOUT:
        status = outcome.description.endpoint_status.value if outcome else "changing"
        raise BackendError(
            f"Endpoint {endpoint_name} is still {status} after {timeout:.0f} s: check "
            "its server log, then wait longer or delete it."
        )
    if outcome.outcome is not Outcome.SUCCESS:
        raise BackendError(
            f"Endpoint {endpoint_name} is {outcome.description.endpoint_status.value}: "
            f"{outcome.failure_reason}"
        )
    return outcome.description


def _model_code_uri(estimator: RLEstimator, model_name: str) -> str | None:
    root = estimator._code_root()
    return None if root is None else f"{root}/{model_name}/source/sourcedir.tar.gz"


def _repacked_model_uri(estimator: RLEstimator, model_name: str) -> str:
    """SDK: ``<code_location or the session's default bucket>/<model name>/model.tar.gz``."""
    if estimator.code_location:
        root = estimator.code_location
    elif estimator.backend is not None:
        root = estimator.backend.default_output_path()
    else:
        root = estimator._code_root() or ""
    if not root:
        raise RLConfigError(
            "Nowhere to write the repacked model.tar.gz: pass code_location= or a backend."
        )
    return f"{root.rstrip('/')}/{model_name}/model.tar.gz"


def _rllib_requirements(estimator: RLEstimator) -> str:
    """``requirements.txt`` for the built-in handler: the Ray that trained the policy."""
    version = estimator.toolkit_version if estimator.toolkit is RLToolkit.RAY else None
    if not version or not toolkits.is_ray2(RLToolkit.RAY, version):
        try:
            version = importlib.metadata.version("ray")
        except importlib.metadata.PackageNotFoundError:
            raise RLConfigError(
                "The built-in RLlib handler needs the Ray version of the policy, and neither the "
                "estimator (toolkit_version) nor this Python (ray) has a Ray 2.x: pass your own "
                "entry_point with a requirements.txt in its source_dir."
            ) from None
    return f"ray[rllib]=={version}\ngymnasium\n"


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
    """``RLEstimator.create_model()``: the SDK's branches plus deployable Ray policies.

    As the SDK, ``source_dir`` and ``dependencies`` default to the estimator's (after
    ``attach()``, ``source_dir`` is the training job's ``sourcedir.tar.gz``), so a handler
    beside the training script is found; custom images and Ray policies get their code repacked
    into ``model.tar.gz`` under ``code/``.
    """
    job = estimator.latest_training_job
    if job is None:
        raise RLConfigError(
            "This estimator has no training job yet: call fit() or RLEstimator.attach(job_name) "
            "before create_model()."
        )
    if not entry_point and (source_dir or dependencies):
        # SDK: AttributeError("Please provide an `entry_point`.").
        raise RLMissingArgumentError(
            "Please provide an `entry_point` with source_dir/dependencies."
        )
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
        "role": role or estimator.role,
        "container_log_level": estimator.container_log_level,
        "environment": dict(environment or {}),
        "vpc_config": vpc,
        "region": estimator.region,
        "backend": estimator.backend,
    }
    training_code = estimator.code_uri(job.name)
    builtin = entry_point == BUILTIN_RLLIB_ENTRY_POINT
    new_code: ModelCode | None = None
    if builtin:
        new_code = ModelCode(
            entry_point=str(RLLIB_HANDLER), requirements=_rllib_requirements(estimator)
        )
    elif entry_point:
        code_source = source_dir or estimator.source_dir
        deps = tuple(dependencies if dependencies is not None else estimator.dependencies)
        if code_source is None or "://" not in code_source:
            validate_source(entry_point, code_source, deps)  # before anything is created
        new_code = ModelCode(entry_point=entry_point, source_dir=code_source, dependencies=deps)
    program = (
        RLLIB_HANDLER.name
        if builtin
        else (
            entry_point
            if entry_point and (source_dir or estimator.source_dir)
            else os.path.basename(entry_point)
            if entry_point
            else estimator._program_name()
        )
    )
    repacked: dict[str, Any] = {
        "program": program,
        "code_uri": REPACKED_SUBMIT_DIRECTORY,
        "repack_from": model_data,
        "model_data": _repacked_model_uri(estimator, name),
    }

    image = image_uri or estimator.image_uri
    if image:
        # SDK FrameworkModel: the new code, else the training job's own, repacked.
        code = new_code
        if code is None:
            if training_code is None:
                raise RLConfigError(f"Training job {job.name} has no code to serve with.")
            code = ModelCode(entry_point=program, source_dir=training_code)
        return RLModel(kind=ModelKind.CUSTOM, image_uri=image, code=code, **common, **repacked)
    toolkit, version, framework = estimator._identity()
    if toolkit is RLToolkit.RAY:
        code = new_code or ModelCode(
            entry_point=str(RLLIB_HANDLER), requirements=_rllib_requirements(estimator)
        )
        if new_code is None:
            repacked["program"] = RLLIB_HANDLER.name
        pytorch = toolkits.framework_version(toolkit, version, framework)
        if framework is not RLFramework.PYTORCH or pytorch is None:
            pytorch = toolkits.RAY_SERVING_PYTORCH_VERSION
        return RLModel(
            kind=ModelKind.PYTORCH,
            framework_version=pytorch,
            py_version="py3" if pytorch.startswith("1.") else None,
            code=code,
            **common,
            **repacked,
        )
    if framework is RLFramework.TENSORFLOW:
        if entry_point:
            log.warning("TensorFlow Serving models take no inference code: ignoring entry_point.")
        return RLModel(
            kind=ModelKind.TENSORFLOW_SERVING,
            framework_version=estimator.framework_version,
            model_data=model_data,
            **common,
        )
    if framework is RLFramework.MXNET:
        # SDK MXNetModel (1.3, no repacking): the training sourcedir serves unless new code
        # comes from elsewhere (its own source_dir, or no training source_dir to find it in).
        reuse = new_code is None or (
            not builtin and source_dir is None and estimator.source_dir is not None
        )
        code_fields: dict[str, Any] = (
            {"code_uri": training_code}
            if reuse
            else {"code": new_code, "code_uri": _model_code_uri(estimator, name)}
        )
        return RLModel(
            kind=ModelKind.MXNET,
            framework_version=estimator.framework_version,
            py_version="py3",
            model_data=model_data,
            program=program,
            **common,
            **code_fields,
        )
    raise RLConfigError(f"Unknown RLFramework {framework!r}: valid values are tensorflow, mxnet.")
