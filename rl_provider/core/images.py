"""ECR image URIs of SageMaker's prebuilt RL and serving containers (DESIGN section 2).

Behaves like ``sagemaker.image_uris.retrieve`` of SDK v2.257.6 for the tables bundled in
``data/image_uris.json`` (made by ``tools/generate_image_tables.py`` from the SDK's
``image_uri_config``): ``{account}.dkr.ecr.{region}.{domain}/{repository}:{tag}`` with
``tag = tag_prefix-processor-py_version`` (empty parts left out, the version as the caller
spelled it when there is no tag_prefix). The table is read on first use, never at import.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rl_provider.exceptions import ImageNotFoundError, RLConfigError

__all__ = [
    "domain_for_region",
    "processor_for",
    "retrieve",
    "supported_regions",
    "supported_versions",
]

log = logging.getLogger(__name__)

_CUSTOM_IMAGE_FIX = "or pass image_uri= to use a custom image"

# SageMaker instance types are "ml.<family>.<size>" (e.g. ml.p3.2xlarge, ml.g4dn.xlarge).
_INSTANCE_TYPE = re.compile(r"ml\.(?P<family>[a-z][a-z0-9-]*)\.[a-z0-9-]+")
_LOCAL_PROCESSORS = {"local": "cpu", "local_cpu": "cpu", "local_gpu": "gpu"}


@functools.cache
def _tables() -> Mapping[str, Mapping[str, Any]]:
    resource = importlib.resources.files("rl_provider.core") / "data" / "image_uris.json"
    tables: Mapping[str, Mapping[str, Any]] = json.loads(resource.read_text(encoding="utf-8"))[
        "tables"
    ]
    return tables


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    # Numeric order, so "0.10" sorts after "0.6"; non-numeric parts sort before numbers.
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in version.split("."))


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


# The Ray backend's instance types: what the job's driver reserves (backends/ray/resources.py).
RAY_INSTANCE_TYPE = re.compile(r"ray(?:\.(?P<cpus>\d+(?:\.\d+)?)cpu)?(?:\.(?P<gpus>\d+)gpu)?")


def is_ray_instance_type(instance_type: str) -> bool:
    return RAY_INSTANCE_TYPE.fullmatch(instance_type) is not None


def is_sagemaker_instance_type(instance_type: str) -> bool:
    """Whether SageMaker runs it (not the local backend's ``local*``, not Ray's ``ray*``)."""
    return not instance_type.startswith("local") and not is_ray_instance_type(instance_type)


def processor_for(instance_type: str) -> str:
    """Return ``"cpu"`` or ``"gpu"`` for a SageMaker or local-mode instance type.

    ``local``/``local_cpu`` -> cpu, ``local_gpu`` -> gpu; ``ml.<family>.<size>`` is gpu when
    the family starts with ``g`` or ``p`` (the SDK's rule in ``image_uris._processor``).
    """
    if instance_type in _LOCAL_PROCESSORS:
        return _LOCAL_PROCESSORS[instance_type]
    ray = RAY_INSTANCE_TYPE.fullmatch(instance_type)
    if ray is not None:
        return "gpu" if ray["gpus"] and int(ray["gpus"]) > 0 else "cpu"
    match = _INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        raise RLConfigError(
            f"Invalid instance_type {instance_type!r}: expected 'local', 'local_cpu', "
            "'local_gpu', 'ray' ('ray.<n>cpu[.<m>gpu]') or a SageMaker type 'ml.<family>.<size>' "
            "such as 'ml.c5.xlarge' "
            "(see https://aws.amazon.com/sagemaker/pricing/instance-types)."
        )
    return "gpu" if match["family"][0] in ("g", "p") else "cpu"


def _check_accelerator(framework: str, instance_type: str) -> None:
    """Inferentia and Trainium have no prebuilt RL or serving image here (SDK v2.257.7 raises).

    The SDK's ``image_uris._processor`` names ``inf`` an unsupported processor, and
    ``_validate_for_suppported_frameworks_and_instance_type`` allows only pytorch on ``trn``.
    """
    match = _INSTANCE_TYPE.fullmatch(instance_type)
    family = match["family"] if match else ""
    if family.startswith("inf"):
        raise ImageNotFoundError(
            f"Unsupported processor: inf (instance_type {instance_type!r}): no {framework} image "
            f"runs on Inferentia. Use a CPU or GPU instance type, {_CUSTOM_IMAGE_FIX}."
        )
    if family.startswith("trn"):
        raise ImageNotFoundError(
            f"Unsupported framework: {framework}. Supported framework(s) for Trainium instances: "
            f"pytorch (neuron images, not bundled here). Use a CPU or GPU instance type, "
            f"{_CUSTOM_IMAGE_FIX}."
        )


def domain_for_region(region: str) -> str:
    """Return the DNS suffix of ECR in ``region`` (botocore's partitions).

    aws-cn (``cn-*``) is ``amazonaws.com.cn``; aws-iso (``us-iso-*``) ``c2s.ic.gov``;
    aws-iso-b (``us-isob-*``) ``sc2s.sgov.gov``; every other region ``amazonaws.com``.
    """
    if region.startswith("cn-"):
        return "amazonaws.com.cn"
    if region.startswith("us-iso-"):
        return "c2s.ic.gov"
    if region.startswith("us-isob-"):
        return "sc2s.sgov.gov"
    return "amazonaws.com"


def _scope_config(framework: str, scope: str) -> Mapping[str, Any]:
    tables = _tables()
    scopes = tables.get(framework)
    if scopes is None or scope not in scopes:
        known = _join(
            f"{name} ({table_scope})"
            for name in sorted(tables)
            for table_scope in sorted(tables[name])
        )
        raise ImageNotFoundError(
            f"No prebuilt {framework!r} image for scope {scope!r}. Known images: {known}. "
            f"Use one of them, {_CUSTOM_IMAGE_FIX}."
        )
    config: Mapping[str, Any] = scopes[scope]
    return config


def _version_entry(framework: str, version: str, scope: str) -> Mapping[str, Any]:
    config = _scope_config(framework, scope)
    # An alias ("1.12") names the config of a full version ("1.12.0").
    entry: Mapping[str, Any] | None = config["versions"].get(
        config["version_aliases"].get(version, version)
    )
    if entry is None:
        raise ImageNotFoundError(
            f"Unsupported {framework} version {version!r} (scope {scope}). Supported versions: "
            f"{_join(supported_versions(framework, scope))}. Use one of them, {_CUSTOM_IMAGE_FIX}."
        )
    return entry


def _is_image(entry: Mapping[str, Any]) -> bool:
    # Otherwise the entry maps each Python version to its own image (mxnet inference 1.4.1).
    return "repository" in entry


def supported_versions(framework: str, scope: str = "training") -> list[str]:
    """Versions (full ones and aliases) with a prebuilt ``framework`` image, in version order."""
    config = _scope_config(framework, scope)
    versions = set(config["versions"]) | set(config["version_aliases"])
    return sorted(versions, key=_version_key)


def supported_regions(framework: str, version: str, scope: str = "training") -> list[str]:
    """Regions with an image for ``framework`` ``version`` (any Python version), sorted."""
    entry = _version_entry(framework, version, scope)
    images = [entry] if _is_image(entry) else list(entry.values())
    return sorted({region for image in images for region in image["registries"]})


def _resolve_py_version(
    entry: Mapping[str, Any], py_version: str | None, framework: str, version: str
) -> str | None:
    available: list[str] = entry.get("py_versions", []) if _is_image(entry) else sorted(entry)
    if not available:
        if py_version is not None:
            log.info(
                "Ignoring py_version %s: %s %s images have none.", py_version, framework, version
            )
        return None
    if py_version is None:
        if len(available) == 1:
            return available[0]
        if "py3" in available:
            return "py3"
        raise ImageNotFoundError(
            f"{framework} {version} images exist for several Python versions: "
            f"{_join(available)}. Pass py_version= one of them, {_CUSTOM_IMAGE_FIX}."
        )
    if py_version not in available:
        raise ImageNotFoundError(
            f"Unsupported py_version {py_version!r} for {framework} {version}. Supported Python "
            f"versions: {_join(available)}. Pass one of them, {_CUSTOM_IMAGE_FIX}."
        )
    return py_version


def retrieve(
    framework: str,
    region: str,
    version: str,
    instance_type: str,
    *,
    scope: str = "training",
    py_version: str | None = None,
) -> str:
    """Return the ECR URI of the prebuilt ``framework`` image, as the SageMaker SDK would.

    ``framework`` is a table key: ``coach-mxnet``, ``coach-tensorflow``, ``ray-pytorch``,
    ``ray-tensorflow``, ``vw`` (scope ``training``), or ``tensorflow``/``mxnet``/``pytorch``
    with ``scope="inference"``. Raises ``RLConfigError`` for a malformed ``instance_type`` and
    ``ImageNotFoundError`` when no image exists for the framework, version, Python version,
    processor or region; each message lists what is supported.
    """
    processor = processor_for(instance_type)
    _check_accelerator(framework, instance_type)
    entry = _version_entry(framework, version, scope)
    py = _resolve_py_version(entry, py_version, framework, version)
    image: Mapping[str, Any] = entry if py is None or _is_image(entry) else entry[py]

    registries: Mapping[str, str] = image["registries"]
    account = registries.get(region)
    if account is None:
        raise ImageNotFoundError(
            f"No {framework} {version} image in region {region!r}. Supported regions: "
            f"{_join(sorted(registries))}. Use one of them, {_CUSTOM_IMAGE_FIX}."
        )
    # Like the SDK, the scope's processor list wins over a per-version one; none = untagged.
    processors: list[str] = _scope_config(framework, scope)["processors"] or image.get(
        "processors", []
    )
    if processors and processor not in processors:
        raise ImageNotFoundError(
            f"No {processor} image for {framework} {version} (instance_type {instance_type!r}). "
            f"Supported processors: {_join(processors)}. Use an instance type for one of them, "
            f"{_CUSTOM_IMAGE_FIX}."
        )
    # The SDK tags with the version as given (alias "1.12" stays "1.12") unless a prefix is set.
    tag_parts = (
        image.get("tag_prefix", version),
        processor if processors else None,
        py,
    )
    tag = "-".join(part for part in tag_parts if part)
    repository: str = image["repository"]
    return f"{account}.dkr.ecr.{region}.{domain_for_region(region)}/{repository}:{tag}"
