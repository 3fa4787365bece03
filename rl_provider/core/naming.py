"""Job, model and endpoint names: SageMaker's rules and the SDK's timestamped names."""

from __future__ import annotations

import re
import time

from rl_provider.exceptions import RLConfigError

# SageMaker API rule for TrainingJobName, ModelName, EndpointName and EndpointConfigName. Always
# used with fullmatch: re.match with "$" would accept a trailing newline ("job\n").
NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MAX_NAME_LENGTH = 63
# sagemaker.utils.base_from_name: a long or short timestamp after the base, anything after it.
_TIMESTAMP_RE = re.compile(r"^(.+)-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}|\d{6}-\d{4})")
_IMAGE_RE = re.compile(r"^(.+/)?([^:/]+)(:[^:]+)?$")


def timestamp(moment: float | None = None) -> str:
    """``YYYY-MM-DD-HH-MM-SS-mmm`` in UTC, as the SDK's ``sagemaker_timestamp()``.

    The milliseconds are the moment's first three decimals, truncated as the SDK does, so the
    stamp never runs ahead of the second it names (rounding 59.9996 s to ``-000`` without
    carrying wrote a name one second in the past). Unlike the SDK (``repr(moment)``'s decimals,
    so ``x.5`` gave ``-5``) they are always three digits, which keeps names sortable and
    ``base_from_name`` able to read them.
    """
    moment = time.time() if moment is None else moment
    decimals = f"{moment:.6f}".split(".")[1]  # fixed notation: never an exponent
    # repr() is the shortest exact text of the float: 0.123 stays 123, not 122.99999.
    shortest = repr(moment).split(".")[1] if "." in repr(moment) else ""
    millis = (shortest if shortest.isdigit() else decimals)[:3].ljust(3, "0")
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(moment)) + f"-{millis}"


def short_timestamp(moment: float | None = None) -> str:
    """``YYMMDD-HHMM`` in UTC (the SDK's ``sagemaker_short_timestamp()``, which uses local time)."""
    moment = time.time() if moment is None else moment
    return time.strftime("%y%m%d-%H%M", time.gmtime(moment))


def name_from_base(
    base: str,
    max_length: int = MAX_NAME_LENGTH,
    moment: float | None = None,
    short: bool = False,
) -> str:
    """``<base>-<timestamp>``, the base trimmed so the name fits ``max_length``."""
    stamp = short_timestamp(moment) if short else timestamp(moment)
    # max(0, ...): the SDK's negative slice kept the base's head when max_length was too small.
    return f"{base[: max(0, max_length - len(stamp) - 1)]}-{stamp}"


def base_from_name(name: str) -> str:
    """The base a ``name_from_base`` name was made from (the name itself otherwise).

    SDK rule: the first long (``-2017-11-06-14-14-15-672``) or short (``-171106-1414``)
    timestamp ends the base, whatever follows it (``neo-2017-...-672-extra`` -> ``neo``).
    """
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
