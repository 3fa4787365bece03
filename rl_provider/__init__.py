"""rl_provider: scheduled reinforcement-learning pipelines for Apache Airflow 3.

Public names are handed out lazily (``__getattr__`` over a name map) so that importing the
package, as every DAG file does, costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "RLEstimator": "rl_provider.core.estimator",
    "TrainingJob": "rl_provider.core.estimator",
    "RLModel": "rl_provider.core.model",
    "RLPredictor": "rl_provider.predictor",
    "RLToolkit": "rl_provider.core.enums",
    "RLFramework": "rl_provider.core.enums",
    "TrainingJobStatus": "rl_provider.core.enums",
    "SecondaryStatus": "rl_provider.core.enums",
    "EndpointStatus": "rl_provider.core.enums",
    "TrainingInput": "rl_provider.core.inputs",
    "FileSystemInput": "rl_provider.core.inputs",
    "TrainingJobDescription": "rl_provider.core.jobs",
    "ModelDescription": "rl_provider.core.jobs",
    "EndpointDescription": "rl_provider.core.jobs",
}

__all__ = [
    "EndpointDescription",
    "EndpointStatus",
    "FileSystemInput",
    "ModelDescription",
    "RLEstimator",
    "RLFramework",
    "RLModel",
    "RLPredictor",
    "RLToolkit",
    "SecondaryStatus",
    "TrainingInput",
    "TrainingJob",
    "TrainingJobDescription",
    "TrainingJobStatus",
    "__version__",
]

if TYPE_CHECKING:
    from rl_provider.core.enums import (
        EndpointStatus,
        RLFramework,
        RLToolkit,
        SecondaryStatus,
        TrainingJobStatus,
    )
    from rl_provider.core.estimator import RLEstimator, TrainingJob
    from rl_provider.core.inputs import FileSystemInput, TrainingInput
    from rl_provider.core.jobs import (
        EndpointDescription,
        ModelDescription,
        TrainingJobDescription,
    )
    from rl_provider.core.model import RLModel
    from rl_provider.predictor import RLPredictor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rl_provider' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
