"""RLEstimator argument validation: order and messages as SageMaker SDK v2 (DESIGN section 2)."""

from __future__ import annotations

import logging

import pytest

from rl_provider import RLEstimator, RLFramework, RLToolkit
from rl_provider.exceptions import (
    RLConfigError,
    RLMissingArgumentError,
    RLUnsupportedCombinationError,
)

MISSING_ALL = "Please provide `toolkit`, `toolkit_version`, `framework` or `image_uri` parameter."


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, RLMissingArgumentError, MISSING_ALL),
        (
            {"toolkit": "ray"},
            RLMissingArgumentError,
            "Please provide `toolkit_version`, `framework` or `image_uri` parameter.",
        ),
        (
            {"toolkit": RLToolkit.RAY, "framework": RLFramework.PYTORCH},
            RLMissingArgumentError,
            "Please provide `toolkit_version` or `image_uri` parameter.",
        ),
        (
            {"toolkit_version": "0.11"},
            RLMissingArgumentError,
            "Please provide `toolkit`, `framework` or `image_uri` parameter.",
        ),
        (
            {"toolkit": "coach", "toolkit_version": "1.6.0", "framework": "tensorflow"},
            RLUnsupportedCombinationError,
            "Provided `coach-1.6.0` and `tensorflow` combination is not supported.",
        ),
        (
            {"toolkit": "coach", "toolkit_version": "0.11.1", "framework": "mxnet"},
            RLUnsupportedCombinationError,
            "Provided `coach-0.11.1` and `mxnet` combination is not supported.",
        ),
        (
            {"toolkit": "ray", "toolkit_version": "2.40.0", "framework": "mxnet"},
            RLUnsupportedCombinationError,
            "Provided `ray-2.40.0` and `mxnet` combination is not supported.",
        ),
        # A bad enum value is reported before anything is found missing or unsupported.
        (
            {"toolkit": "rllib"},
            RLConfigError,
            "Invalid toolkit 'rllib': valid values are 'coach', 'ray'",
        ),
        (
            {"toolkit": "coach", "toolkit_version": "9.9", "framework": "caffe"},
            RLConfigError,
            "Invalid framework 'caffe': valid values are 'tensorflow', 'mxnet', 'pytorch'",
        ),
    ],
)
def test_validation_order_and_messages(kwargs, error, message):
    with pytest.raises(error) as info:
        RLEstimator("train.py", **kwargs)
    assert str(info.value).startswith(message)
    assert type(info.value) is error


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"toolkit": "coach", "toolkit_version": "1.6.0", "framework": "tensorflow"}],
)
def test_sdk_errors_are_caught_as_attribute_error_and_value_error(kwargs):
    with pytest.raises(AttributeError):
        RLEstimator("train.py", **kwargs)
    with pytest.raises(ValueError):  # noqa: PT011 - the point is the base class
        RLEstimator("train.py", **kwargs)


def test_bad_enum_is_a_value_error_but_not_an_attribute_error():
    with pytest.raises(ValueError) as info:  # noqa: PT011
        RLEstimator("train.py", toolkit="rllib", toolkit_version="1.6.0", framework="pytorch")
    assert not isinstance(info.value, AttributeError)


@pytest.mark.parametrize(
    ("toolkit", "framework"),
    [("RAY", "PyTorch"), (RLToolkit.RAY, RLFramework.PYTORCH), ("ray", "pytorch")],
)
def test_strings_and_enums_are_coerced_once(toolkit, framework):
    estimator = RLEstimator(
        "train.py", toolkit=toolkit, toolkit_version="1.6.0", framework=framework
    )
    assert estimator.toolkit is RLToolkit.RAY
    assert estimator.framework is RLFramework.PYTORCH
    assert estimator.framework_version == "1.8.1"


def test_image_uri_skips_checks_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        estimator = RLEstimator(
            "train.py", toolkit="coach", toolkit_version="1.6.0", image_uri="my/image:1"
        )
    assert estimator.training_image_uri() == "my/image:1"
    assert "`toolkit`, `toolkit_version` are going to be ignored" in caplog.text


def test_image_name_is_an_alias_of_image_uri():
    assert RLEstimator("train.py", image_name="my/image:1").image_uri == "my/image:1"
    with pytest.raises(RLConfigError, match="disagree"):
        RLEstimator("train.py", image_name="a/b:1", image_uri="c/d:2")


# The SDK's 13 versions plus Ray 2.x for the local backend.
SDK_TABLE = [
    ("coach", "0.10.1", "tensorflow", "1.11"),
    ("coach", "0.10", "tensorflow", "1.11"),
    ("coach", "0.11.0", "tensorflow", "1.11"),
    ("coach", "0.11.0", "mxnet", "1.3"),
    ("coach", "0.11.1", "tensorflow", "1.12"),
    ("coach", "0.11", "tensorflow", "1.12"),
    ("coach", "0.11", "mxnet", "1.3"),
    ("coach", "1.0.0", "tensorflow", "1.12"),
    ("ray", "0.5.3", "tensorflow", "1.11"),
    ("ray", "0.5", "tensorflow", "1.11"),
    ("ray", "0.6.5", "tensorflow", "1.12"),
    ("ray", "0.6", "tensorflow", "1.12"),
    ("ray", "0.8.2", "tensorflow", "2.1"),
    ("ray", "0.8.5", "tensorflow", "2.1"),
    ("ray", "0.8.5", "pytorch", "1.5"),
    ("ray", "1.6.0", "tensorflow", "2.5.0"),
    ("ray", "1.6.0", "pytorch", "1.8.1"),
    ("ray", "2.40.0", "pytorch", None),
    ("ray", "2.9", "tensorflow", None),
]


@pytest.mark.parametrize(("toolkit", "version", "framework", "framework_version"), SDK_TABLE)
def test_supported_combinations(toolkit, version, framework, framework_version):
    estimator = RLEstimator("t.py", toolkit=toolkit, toolkit_version=version, framework=framework)
    assert estimator.framework_version == framework_version


def test_ray2_has_no_sagemaker_image_but_runs_locally():
    estimator = RLEstimator(
        "t.py",
        toolkit="ray",
        toolkit_version="2.40.0",
        framework="pytorch",
        instance_type="ml.c5.xlarge",
    )
    with pytest.raises(RLConfigError, match="pass image_uri="):
        estimator.training_image_uri()
    estimator.instance_type = "local"
    assert estimator.training_image_uri().startswith("rl-provider/ray:2.40.0-torch-cpu-py3")
