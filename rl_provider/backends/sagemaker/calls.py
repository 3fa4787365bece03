"""One place that calls AWS: throttling retried with backoff, errors turned into ours.

botocore retries throttling itself (the default client config asks for the ``adaptive`` mode),
but its budget is spent in seconds and a ``botocore.stub.Stubber`` bypasses it; long polls (a
training job watched for hours) need their own patience. Every other AWS error becomes a
``BackendError`` subclass that keeps the AWS code and message and says what to do about it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rl_provider.exceptions import (
    AWSAccessDeniedError,
    AWSThrottledError,
    AWSValidationError,
    BackendError,
    ResourceExistsError,
)

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

__all__ = [
    "AWSAccessDeniedError",
    "AWSThrottledError",
    "AWSValidationError",
    "RetryPolicy",
    "acall",
    "call",
    "error_code",
    "translate",
]

# botocore.retries.standard.ThrottlingErrorDetector's codes, less LimitExceededException: on
# SageMaker that is a quota ("ResourceLimitExceeded"-like), which no amount of waiting fixes.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# Credentials that are missing, wrong, expired, or lack a permission (IAM, STS, S3 codes).
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "403",
    }
)
VALIDATION_CODES = frozenset({"ValidationException", "ValidationError"})
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "404",
        "NotFound",
    }
)
# IAM action prefix per client: sagemaker-runtime's InvokeEndpoint is sagemaker:InvokeEndpoint.
_IAM_PREFIX = {"sagemaker-runtime": "sagemaker", "logs": "logs", "s3": "s3", "sts": "sts"}
# S3 operations whose IAM action has another name (Amazon S3 "Actions" reference).
_IAM_ACTION = {"HeadObject": "GetObject", "HeadBucket": "ListBucket"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Full-jitter exponential backoff for throttling (AWS Architecture Blog's recommendation)."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _message(err: ClientError) -> str:
    error = err.response.get("Error", {})
    return str(error.get("Message") or error.get("Code") or err)


def _service(client: Any) -> str:
    try:
        return str(client.meta.service_model.service_name)
    except AttributeError:
        return "sagemaker"


def translate(
    err: ClientError,
    service: str,
    *,
    not_found: Callable[[str], BackendError] | None = None,
    exists: str | None = None,
) -> BackendError:
    """Our error for an AWS one. ``not_found`` builds the error for a missing resource.

    ``not_found`` is passed only by calls whose one argument is a name validated beforehand:
    SageMaker has no not-found code for describe/delete (it answers ``ValidationException``
    "Could not find ..."), so for those calls a validation error can only mean "no such name".
    """
    code = error_code(err)
    message = _message(err)
    operation = getattr(err, "operation_name", "the call")
    action = f"{_IAM_PREFIX.get(service, 'sagemaker')}:{_IAM_ACTION.get(operation, operation)}"
    if code in ACCESS_CODES:
        return AWSAccessDeniedError(
            f"AWS denied {action} ({code}): {message}. Fix: give the identity of the AWS "
            f"connection (aws_conn_id) permission for {action} (SageMaker jobs also need "
            "iam:PassRole on the execution role), or refresh expired credentials."
        )
    if code in THROTTLING_CODES:
        return AWSThrottledError(
            f"AWS kept throttling {action} ({code}): {message}. Fix: poll less often "
            "(check_interval / poll_interval) or ask for a higher API rate quota."
        )
    if not_found is not None and (code in VALIDATION_CODES or code in NOT_FOUND_CODES):
        return not_found(message)
    if exists is not None and code in ("ResourceInUse", "ResourceInUseException"):
        return ResourceExistsError(f"{exists} ({code}: {message}).")
    if code in ("ResourceLimitExceeded", "LimitExceededException"):
        return BackendError(
            f"{action} hit an AWS quota ({code}): {message}. Fix: request a quota increase in "
            "Service Quotas, use another instance type, or wait for running jobs to end."
        )
    if code in VALIDATION_CODES:
        return AWSValidationError(
            f"SageMaker rejected {operation} ({code}): {message}. Fix the value the message "
            "names; requests come from RLEstimator.training_request() / "
            "RLModel.create_model_request(), so the estimator or model argument is the place."
        )
    return BackendError(f"{action} failed ({code or type(err).__name__}): {message}")


def _after(
    err: ClientError,
    client: Any,
    operation: str,
    attempt: int,
    policy: RetryPolicy,
    options: tuple[Callable[[str], BackendError] | None, str | None, bool, frozenset[str]],
) -> float | None:
    """What a failed ``call``/``acall`` does next: None to answer None (a code in ``absent``),
    the seconds to wait before retrying (throttled), or raise (the ClientError when ``raw``)."""
    not_found, exists, raw, absent = options
    code = error_code(err)
    if code in absent:
        return None
    if code in THROTTLING_CODES and attempt < policy.max_attempts:
        delay = policy.delay(attempt)
        log.info("%s throttled (%s); retry %s in %.1f s", operation, code, attempt, delay)
        return delay
    if raw:
        raise err
    raise translate(err, _service(client), not_found=not_found, exists=exists) from err


def call(
    client: Any,
    operation: str,
    policy: RetryPolicy,
    *,
    not_found: Callable[[str], BackendError] | None = None,
    exists: str | None = None,
    raw: bool = False,
    absent: frozenset[str] = frozenset(),
    **kwargs: Any,
) -> Any:
    """``client.<operation>(**kwargs)``, throttling retried; with ``raw`` errors stay ClientError.

    ``raw`` lets a caller inspect the code itself (an S3 404 that means "upload it"); an error
    whose code is in ``absent`` is answered with None (a log stream that does not exist yet).
    """
    from botocore.exceptions import ClientError

    method = getattr(client, operation)
    options = (not_found, exists, raw, absent)
    for attempt in itertools.count(1):
        try:
            return method(**kwargs)
        except ClientError as err:
            delay = _after(err, client, operation, attempt, policy, options)
            if delay is None:
                return None
        time.sleep(delay)


async def acall(
    client: Any,
    operation: str,
    policy: RetryPolicy,
    *,
    not_found: Callable[[str], BackendError] | None = None,
    raw: bool = False,
    absent: frozenset[str] = frozenset(),
    **kwargs: Any,
) -> Any:
    """``await client.<operation>(**kwargs)`` on an aiobotocore client, as ``call``."""
    from botocore.exceptions import ClientError

    method: Callable[..., Awaitable[Any]] = getattr(client, operation)
    options = (not_found, None, raw, absent)
    for attempt in itertools.count(1):
        try:
            return await method(**kwargs)
        except ClientError as err:
            delay = _after(err, client, operation, attempt, policy, options)
            if delay is None:
                return None
        await asyncio.sleep(delay)
