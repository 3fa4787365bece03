"""Hyperparameter encoding: SageMaker passes every value as a string, the SDK JSON-encodes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rl_provider.exceptions import RLConfigError


def encode_value(key: str, value: Any) -> str:
    """``json.dumps(value)``: ``0.001`` -> ``"0.001"``, ``"s"`` -> ``'"s"'``, True -> ``"true"``."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as err:
        raise RLConfigError(
            f"Hyperparameter {key!r} has a value of type {type(value).__name__} that JSON cannot "
            f"encode ({err}); pass str, int, float, bool, None, or lists/dicts of those."
        ) from None


def encode(hyperparameters: Mapping[Any, Any] | None) -> dict[str, str]:
    """Every key as ``str``, every value JSON-encoded (SDK: ``_json_encode_hyperparameters``)."""
    return {
        str(key): encode_value(str(key), value) for key, value in (hyperparameters or {}).items()
    }


def decode_value(raw: str) -> Any:
    """The inverse used inside the container: JSON when it parses, the raw string otherwise."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def decode(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    return {key: decode_value(value) for key, value in hyperparameters.items()}
