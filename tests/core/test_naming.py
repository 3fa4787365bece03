from __future__ import annotations

import re

import pytest

from rl_provider.core.naming import (
    base_from_name,
    base_name_from_image,
    name_from_base,
    sanitize_base,
    validate_name,
)
from rl_provider.exceptions import RLConfigError

STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"


@pytest.mark.parametrize(
    ("base", "expected_base"),
    [
        ("cartpole", "cartpole"),
        ("sagemaker-rl-mxnet", "sagemaker-rl-mxnet"),
        ("x" * 39, "x" * 39),
        ("y" * 80, "y" * 39),  # trimmed so the whole name fits 63
    ],
)
def test_name_from_base(base, expected_base):
    name = name_from_base(base)
    assert re.fullmatch(re.escape(expected_base) + "-" + STAMP, name)
    assert len(name) <= 63
    assert base_from_name(name) == expected_base
    validate_name(name)


def test_name_from_base_is_utc_with_milliseconds():
    assert name_from_base("job", moment=1_700_000_000.123) == "job-2023-11-14-22-13-20-123"


@pytest.mark.parametrize(
    ("image", "base"),
    [
        (
            "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-mxnet:coach0.11.0-cpu-py3",
            "sagemaker-rl-mxnet",
        ),
        ("rl-provider/ray:2.40.0-torch-cpu-py311", "ray"),
        ("my-image", "my-image"),
    ],
)
def test_base_name_from_image(image, base):
    assert base_name_from_image(image) == base


@pytest.mark.parametrize("name", ["a", "job-1", "A--b", "x" * 63, "0abc"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "a_b", "a.b", "x" * 64, "é", "a b", "abc\n", "a\n"]
)
def test_invalid_names_are_config_errors(name):
    with pytest.raises(RLConfigError, match="letters, digits and hyphens"):
        validate_name(name)


def test_base_from_name_leaves_other_names_alone():
    assert base_from_name("my-job") == "my-job"


@pytest.mark.parametrize(
    ("text", "base"), [("my_dag.train", "my-dag-train"), ("__", "rl"), ("ok-1", "ok-1")]
)
def test_sanitize_base(text, base):
    assert sanitize_base(text) == base
