"""Job, model and endpoint names: SageMaker's rules and the SDK's timestamped names."""

from __future__ import annotations

import re
import time

from rl_provider.exceptions import RLConfigError

# SageMaker API rule for TrainingJobName, ModelName, EndpointName and EndpointConfigName. Always
# used with fullmatch: re.match with "$" would accept a trailing newline ("job\n").
NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MAX_NAME_LENGTH = 63
_TIMESTAMP_RE = re.compile(r"^(.+)-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3})$")
_IMAGE_RE = re.compile(r"^(.+/)?([^:/]+)(:[^:]+)?$")


def timestamp(moment: float | None = None) -> str:
    """``YYYY-MM-DD-HH-MM-SS-mmm`` in UTC, as the SDK's ``sagemaker_timestamp()``."""
    moment = time.time() if moment is None else moment
    millis = round(moment * 1000) % 1000
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(moment)) + f"-{millis:03d}"


def name_from_base(
    base: str, max_length: int = MAX_NAME_LENGTH, moment: float | None = None
) -> str:
    """``<base>-<timestamp>``, the base trimmed so the name fits ``max_length``."""
    stamp = timestamp(moment)
    return f"{base[: max_length - len(stamp) - 1]}-{stamp}"


def base_from_name(name: str) -> str:
    """The base a ``name_from_base`` name was made from (the name itself otherwise)."""
    match = _TIMESTAMP_RE.match(name)
    return match.group(1) if match else name


def base_name_from_image(image_uri: str) -> str:
    """The repository name of an image URI: the SDK's default job base name."""
    match = _IMAGE_RE.match(image_uri)
    return match.group(2) if match else image_uri


def validate_name(name: str, *, kind: str = "job name") -> str:
    """Return ``name`` if SageMaker accepts it, else raise ``RLConfigError`` saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise RLConfigError(
            f"Invalid {kind} {name!r}: use 1-{MAX_NAME_LENGTH} letters, digits and hyphens, "
            "starting and ending with a letter or digit "
            f"(SageMaker pattern {NAME_PATTERN.pattern})."
        )
    return name


def sanitize_base(base: str) -> str:
    """Free text (a DAG id, a task id) as a usable name base: ``my_dag.x`` -> ``my-dag-x``."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-")
    return cleaned or "rl"
