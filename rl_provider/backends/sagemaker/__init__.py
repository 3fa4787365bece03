"""The SageMaker backend: the ``Backend`` contract on AWS through boto3 (aiobotocore for triggers).

``SageMakerBackend`` and ``AsyncSageMakerBackend`` take client factories, so Airflow's hook can
build clients from an ``aws`` connection (``AwsBaseHook``) and plain scripts use a boto3 session.
Nothing here imports boto3, botocore or aiobotocore at module level.
"""

from __future__ import annotations

from rl_provider.backends.sagemaker.aio import AsyncSageMakerBackend
from rl_provider.backends.sagemaker.backend import SageMakerBackend
from rl_provider.backends.sagemaker.calls import RetryPolicy
from rl_provider.exceptions import AWSAccessDeniedError, AWSThrottledError, AWSValidationError

__all__ = [
    "AWSAccessDeniedError",
    "AWSThrottledError",
    "AWSValidationError",
    "AsyncSageMakerBackend",
    "RetryPolicy",
    "SageMakerBackend",
]
