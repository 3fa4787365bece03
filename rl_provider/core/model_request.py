"""What a trained policy is served with, and the ``CreateModel`` request: pure, no I/O, no backend.

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

``model_arguments()`` makes that choice from the estimator's settings (``TrainingSettings``) and
what the estimator resolved about its latest job (``TrainedJob``); ``ModelDefinition`` builds the
request. ``RLModel`` (``rl_provider.core.model``) adds the backend: packaging, create, deploy.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_provider.core import images, toolkits
from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.core.naming import validate_name
from rl_provider.core.packaging import MODEL_CODE_DIR, validate_source
from rl_provider.core.training_request import (
    code_root,
    code_uri,
    identity,
    program_name,
    vpc_config,
)
from rl_provider.exceptions import RLConfigError, RLMissingArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rl_provider.core.training_request import TrainingSettings

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


@dataclass(kw_only=True)
class ModelDefinition:
    """A model as CreateModel takes it; ``RLModel`` adds the backend that creates it.

    ``code`` is inference code still to be packaged, ``code_uri`` where the container finds it
    (``SAGEMAKER_SUBMIT_DIRECTORY``); a repacked model's ``model_data`` is the artifact to write.
    """

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


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainedJob:
    """What the estimator resolved (with its backend) about the job a model serves."""

    job_name: str
    model_data: str | None
    output_path: str | None
    region: str
    # code_location, else the backend's default output path, else the code root (SDK).
    repack_root: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOptions:
    """``create_model()``'s arguments (``name`` already defaulted by the estimator)."""

    name: str
    role: str | None
    entry_point: str | None
    source_dir: str | None
    dependencies: Sequence[str] | None
    image_uri: str | None
    environment: Mapping[str, str] | None
    vpc_config_override: Mapping[str, Sequence[str]] | None


def rllib_requirements(settings: TrainingSettings) -> str:
    """``requirements.txt`` for the built-in handler: the Ray that trained the policy."""
    version = settings.toolkit_version if settings.toolkit is RLToolkit.RAY else None
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


def _new_code(settings: TrainingSettings, options: ModelOptions) -> ModelCode | None:
    """The inference code ``create_model()`` was given (validated), if any."""
    entry_point = options.entry_point
    if entry_point == BUILTIN_RLLIB_ENTRY_POINT:
        return ModelCode(entry_point=str(RLLIB_HANDLER), requirements=rllib_requirements(settings))
    if not entry_point:
        return None
    code_source = options.source_dir or settings.source_dir
    deps = tuple(
        options.dependencies if options.dependencies is not None else settings.dependencies
    )
    if code_source is None or "://" not in code_source:
        validate_source(entry_point, code_source, deps)  # before anything is created
    return ModelCode(entry_point=entry_point, source_dir=code_source, dependencies=deps)


def _program(settings: TrainingSettings, options: ModelOptions) -> str:
    """``SAGEMAKER_PROGRAM`` of the model: the handler's, the new code's, or the training one."""
    entry_point = options.entry_point
    if entry_point == BUILTIN_RLLIB_ENTRY_POINT:
        return RLLIB_HANDLER.name
    if entry_point and (options.source_dir or settings.source_dir):
        return entry_point
    if entry_point:
        return os.path.basename(entry_point)
    return program_name(settings.entry_point, settings.source_dir)


def model_arguments(
    settings: TrainingSettings, job: TrainedJob, options: ModelOptions
) -> dict[str, Any]:
    """``RLEstimator.create_model()``: the SDK's branches plus deployable Ray policies, as the
    keyword arguments of ``ModelDefinition`` (and ``RLModel``).

    As the SDK, ``source_dir`` and ``dependencies`` default to the estimator's (after
    ``attach()``, ``source_dir`` is the training job's ``sourcedir.tar.gz``), so a handler
    beside the training script is found; custom images and Ray policies get their code repacked
    into ``model.tar.gz`` under ``code/``.
    """
    entry_point = options.entry_point
    if not entry_point and (options.source_dir or options.dependencies):
        # SDK: AttributeError("Please provide an `entry_point`.").
        raise RLMissingArgumentError(
            "Please provide an `entry_point` with source_dir/dependencies."
        )
    if job.model_data is None:
        raise RLConfigError(f"Training job {job.job_name} has no model artifact location.")
    name = validate_name(options.name, kind="model name")
    if options.vpc_config_override is not None:
        override = options.vpc_config_override
        vpc = {k: list(v) for k, v in override.items()} or None
    else:
        vpc = vpc_config(settings.subnets, settings.security_group_ids)
    common: dict[str, Any] = {
        "name": name,
        "role": options.role or settings.role,
        "container_log_level": settings.container_log_level,
        "environment": dict(options.environment or {}),
        "vpc_config": vpc,
        "region": job.region,
    }
    training_code = code_uri(settings, job.job_name, job.output_path)
    builtin = entry_point == BUILTIN_RLLIB_ENTRY_POINT
    new_code = _new_code(settings, options)
    program = _program(settings, options)
    if not job.repack_root:
        raise RLConfigError(
            "Nowhere to write the repacked model.tar.gz: pass code_location= or a backend."
        )
    repacked: dict[str, Any] = {
        "program": program,
        "code_uri": REPACKED_SUBMIT_DIRECTORY,
        "repack_from": job.model_data,
        "model_data": f"{job.repack_root.rstrip('/')}/{name}/model.tar.gz",
    }

    image = options.image_uri or settings.image_uri
    if image:
        # SDK FrameworkModel: the new code, else the training job's own, repacked.
        code = new_code
        if code is None:
            if training_code is None:
                raise RLConfigError(f"Training job {job.job_name} has no code to serve with.")
            code = ModelCode(entry_point=program, source_dir=training_code)
        return {"kind": ModelKind.CUSTOM, "image_uri": image, "code": code, **common, **repacked}
    toolkit, version, framework = identity(settings)
    if toolkit is RLToolkit.RAY:
        code = new_code or ModelCode(
            entry_point=str(RLLIB_HANDLER), requirements=rllib_requirements(settings)
        )
        if new_code is None:
            repacked["program"] = RLLIB_HANDLER.name
        pytorch = toolkits.framework_version(toolkit, version, framework)
        if framework is not RLFramework.PYTORCH or pytorch is None:
            pytorch = toolkits.RAY_SERVING_PYTORCH_VERSION
        return {
            "kind": ModelKind.PYTORCH,
            "framework_version": pytorch,
            "py_version": "py3" if pytorch.startswith("1.") else None,
            "code": code,
            **common,
            **repacked,
        }
    if framework is RLFramework.TENSORFLOW:
        if entry_point:
            log.warning("TensorFlow Serving models take no inference code: ignoring entry_point.")
        return {
            "kind": ModelKind.TENSORFLOW_SERVING,
            "framework_version": settings.framework_version,
            "model_data": job.model_data,
            **common,
        }
    if framework is RLFramework.MXNET:
        # SDK MXNetModel (1.3, no repacking): the training sourcedir serves unless new code
        # comes from elsewhere (its own source_dir, or no training source_dir to find it in).
        reuse = new_code is None or (
            not builtin and options.source_dir is None and settings.source_dir is not None
        )
        root = code_root(settings.code_location, job.output_path)
        code_fields: dict[str, Any] = (
            {"code_uri": training_code}
            if reuse
            else {
                "code": new_code,
                "code_uri": None if root is None else f"{root}/{name}/source/sourcedir.tar.gz",
            }
        )
        return {
            "kind": ModelKind.MXNET,
            "framework_version": settings.framework_version,
            "py_version": "py3",
            "model_data": job.model_data,
            "program": program,
            **common,
            **code_fields,
        }
    raise RLConfigError(f"Unknown RLFramework {framework!r}: valid values are tensorflow, mxnet.")
