"""What SageMaker SDK v2.257.7 produced, recorded by ``tools/sdk_golden.py``: the fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "sdk_v2_257_7"


def cases(topic: str) -> dict[str, Any]:
    """``{case name: case}`` of one fixture file (``requests``, ``models``, ``attach``...)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{topic}.json").read_text(encoding="utf-8"))
    assert data["sdk_version"] == "2.257.7"
    return data["cases"]  # type: ignore[no-any-return]


class SdkConfig:
    """An SDK config object as the SDK hands it over: only ``_to_request_dict()`` (duck type)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self._request = request

    def _to_request_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._request))  # type: ignore[no-any-return]


class SdkInput:
    """An SDK ``TrainingInput``/``FileSystemInput``: only its ``config`` dict (duck type)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = json.loads(json.dumps(config))


def revive(value: Any) -> Any:
    """A recorded argument back as an object: SDK objects become their duck types."""
    if isinstance(value, dict) and "__sdk__" in value:
        if "request" in value:
            return SdkConfig(value["request"])
        return SdkInput(value["config"])
    if isinstance(value, dict):
        return {key: revive(item) for key, item in value.items()}
    return value
