"""The whole rl_provider error hierarchy.

::

    RLProviderError
     +-- RLConfigError (ValueError)          bad user input, raised before anything is created
     |    +-- RLMissingArgumentError (AttributeError)      SDK: "Please provide `toolkit`..."
     |    +-- RLUnsupportedCombinationError (AttributeError) SDK: "Provided `coach-1.6.0`..."
     |    +-- ImageNotFoundError                           no image for region/version/processor
     +-- BackendError                        a backend could not do what was asked
     |    +-- JobNotFoundError (LookupError)
     |    +-- MetricsNotFoundError (LookupError)  a job that exists has no metric data (yet)
     |    +-- ModelNotFoundError (LookupError)
     |    +-- EndpointNotFoundError (LookupError)
     |    +-- ResourceExistsError            a model/endpoint of that name exists and differs
     |    +-- ResourceBusyError              transient state (an endpoint Creating/Updating): retry
     |    +-- ModelInvocationError           the model answered 4xx/5xx (SageMaker: ModelError)
     |    +-- AWSAccessDeniedError (PermissionError)  credentials or permission refused
     |    +-- AWSValidationError (ValueError)         SageMaker rejected a request's value
     |    +-- AWSThrottledError              still throttled after every retry
     +-- JobFailedError                      a training job ended Failed or Stopped

The two SDK-compatible errors also subclass ``AttributeError`` because
``sagemaker.rl.RLEstimator`` raised ``AttributeError`` for them and user code catches that.
Every error keeps its constructor arguments in ``args`` so it pickles (Airflow sends errors
across processes).
"""

from __future__ import annotations

__all__ = [
    "AWSAccessDeniedError",
    "AWSThrottledError",
    "AWSValidationError",
    "BackendError",
    "EndpointNotFoundError",
    "ImageNotFoundError",
    "JobFailedError",
    "JobNotFoundError",
    "MetricsNotFoundError",
    "ModelInvocationError",
    "ModelNotFoundError",
    "RLConfigError",
    "RLMissingArgumentError",
    "RLProviderError",
    "RLUnsupportedCombinationError",
    "ResourceBusyError",
    "ResourceExistsError",
]


class RLProviderError(Exception):
    """Base class of every error rl_provider raises on purpose."""


class RLConfigError(RLProviderError, ValueError):
    """Bad user input: a value, what is allowed, and the fix. Raised before anything is created."""


class RLMissingArgumentError(RLConfigError, AttributeError):
    """Neither an image nor the toolkit/toolkit_version/framework triple was given."""


class RLUnsupportedCombinationError(RLConfigError, AttributeError):
    """The toolkit, version and framework are not a combination any image supports."""


class ImageNotFoundError(RLConfigError):
    """No image exists for the region, version or processor asked for."""


class BackendError(RLProviderError):
    """A backend could not carry out a request."""


class JobNotFoundError(BackendError, LookupError):
    """No training job of that name exists on the backend."""


class MetricsNotFoundError(BackendError, LookupError):
    """The job exists but has no metric data (yet): nothing matched its MetricDefinitions."""


class ModelNotFoundError(BackendError, LookupError):
    """No model of that name exists on the backend."""


class EndpointNotFoundError(BackendError, LookupError):
    """No endpoint (or endpoint config) of that name exists on the backend."""


class ResourceExistsError(BackendError):
    """A resource of that name exists with a different definition."""


class ResourceBusyError(BackendError):
    """A resource is in a transient state that refuses the request (an endpoint that is
    Creating or Updating cannot be updated): the same request succeeds once it settles, so a
    task retries it (unlike ``RLConfigError``)."""


class AWSAccessDeniedError(BackendError, PermissionError):
    """AWS refused the credentials or the permission (AccessDenied, expired token, ...)."""


class AWSValidationError(BackendError, ValueError):
    """SageMaker rejected a request (ValidationException): the AWS message names the value."""


class AWSThrottledError(BackendError):
    """Still throttled after every retry."""


class ModelInvocationError(BackendError):
    """The model answered an invocation with an error status (SageMaker's ``ModelError``)."""

    def __init__(self, endpoint_name: str, status_code: int, message: str) -> None:
        super().__init__(endpoint_name, status_code, message)
        self.endpoint_name = endpoint_name
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return f"Endpoint {self.endpoint_name} answered {self.status_code}: {self.message}"


class JobFailedError(RLProviderError):
    """A training job ended ``Failed`` or ``Stopped``."""

    def __init__(self, job_name: str, status: str, failure_reason: str | None = None) -> None:
        super().__init__(job_name, status, failure_reason)
        self.job_name = job_name
        self.status = status
        self.failure_reason = failure_reason

    def __str__(self) -> str:
        reason = f": {self.failure_reason}" if self.failure_reason else ""
        return f"Training job {self.job_name} ended {self.status}{reason}"
