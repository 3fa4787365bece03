"""Metric definitions (``{"Name", "Regex"}``) and the extraction SageMaker does on log lines."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rl_provider.core.enums import RLToolkit
from rl_provider.exceptions import RLConfigError

# The SDK's float pattern for Ray metrics (sagemaker.rl.estimator.default_metric_definitions).
FLOAT_REGEX = "[-+]?[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?"


def _ray_metric(name: str) -> dict[str, str]:
    return {"Name": name, "Regex": f"{name}: ({FLOAT_REGEX})"}


COACH_METRICS: tuple[dict[str, str], ...] = (
    {"Name": "reward-training", "Regex": "^Training>.*Total reward=(.*?),"},
    {"Name": "reward-testing", "Regex": "^Testing>.*Total reward=(.*?),"},
)
RAY_METRICS: tuple[dict[str, str], ...] = (
    _ray_metric("episode_reward_mean"),
    _ray_metric("episode_reward_max"),
)
# Ray 2.x (new API stack) reports episode_return_*; matched as well for a Ray 2.x estimator.
RAY2_METRICS: tuple[dict[str, str], ...] = (
    _ray_metric("episode_return_mean"),
    _ray_metric("episode_return_max"),
)


def default_metric_definitions(
    toolkit: RLToolkit | str, toolkit_version: str | None = None
) -> list[dict[str, str]]:
    """The SDK's defaults for ``toolkit``; a Ray 2.x estimator also matches ``episode_return_*``."""
    toolkit = RLToolkit.coerce(toolkit, argument="toolkit")
    if toolkit is RLToolkit.COACH:
        return [dict(d) for d in COACH_METRICS]
    definitions = [dict(d) for d in RAY_METRICS]
    if toolkit_version is not None and toolkit_version.split(".")[0] == "2":
        definitions += [dict(d) for d in RAY2_METRICS]
    return definitions


def validate_definitions(definitions: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Each definition has a ``Name`` and a compilable ``Regex`` (CreateTrainingJob rule)."""
    checked = []
    for i, definition in enumerate(definitions):
        if not isinstance(definition, Mapping) or set(definition) != {"Name", "Regex"}:
            raise RLConfigError(
                f"metric_definitions[{i}] is {definition!r}: each item must be a dict with exactly "
                "the keys 'Name' and 'Regex'."
            )
        try:
            re.compile(definition["Regex"])
        except re.error as err:
            raise RLConfigError(
                f"metric_definitions[{i}] ({definition['Name']!r}) has a bad regex "
                f"{definition['Regex']!r}: {err}."
            ) from None
        checked.append({"Name": str(definition["Name"]), "Regex": str(definition["Regex"])})
    return checked


@dataclass(frozen=True, slots=True)
class MetricMatch:
    name: str
    value: float


class MetricExtractor:
    """Matches log lines against metric definitions compiled once.

    As SageMaker does, the first capture group is the value; a value that is not a finite
    number is skipped (SageMaker drops NaN/inf metrics).
    """

    __slots__ = ("_patterns",)

    def __init__(self, definitions: Iterable[Mapping[str, str]]) -> None:
        self._patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]

    def match(self, line: str) -> list[MetricMatch]:
        found = []
        for name, pattern in self._patterns:
            m = pattern.search(line)
            if m is None:
                continue
            raw = m.group(1) if m.groups() else m.group(0)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                found.append(MetricMatch(name, value))
        return found
