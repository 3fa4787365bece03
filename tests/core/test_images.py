"""Image URIs: the bundled table against the SageMaker SDK's configs and known SDK URIs.

Two independent checks so a shared mistake cannot pass both: every RL image is re-derived here
from the SDK's own JSON files (read directly, with the SDK formula written out plainly), and a
list of literal URIs printed by ``sagemaker.image_uris.retrieve`` (SDK v2.257.6) is compared
as is.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rl_provider.core import images
from rl_provider.exceptions import ImageNotFoundError, RLConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference" / "sagemaker_image_uri_config"
NO_REFERENCE = f"SDK reference configs not found at {REFERENCE_DIR}"

RL_TABLES = ("coach-mxnet", "coach-tensorflow", "ray-pytorch", "ray-tensorflow")
INSTANCE_PROCESSORS = {
    "ml.c5.xlarge": "cpu",
    "ml.p3.2xlarge": "gpu",
    "local": "cpu",
    "local_gpu": "gpu",
}
# Regions outside the aws partition (botocore's endpoints.json); every other one is amazonaws.com.
SPECIAL_DOMAINS = {
    "cn-north-1": "amazonaws.com.cn",
    "cn-northwest-1": "amazonaws.com.cn",
    "us-iso-east-1": "c2s.ic.gov",
    "us-isob-east-1": "sc2s.sgov.gov",
}


def _reference(framework: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((REFERENCE_DIR / f"{framework}.json").read_text())
    return config


def _expected(account: str, region: str, repository: str, tag: str) -> str:
    domain = SPECIAL_DOMAINS.get(region, "amazonaws.com")
    return f"{account}.dkr.ecr.{region}.{domain}/{repository}:{tag}"


def _skipped_case(arity: int) -> list[Any]:
    return [pytest.param(*[None] * arity, marks=pytest.mark.skip(reason=NO_REFERENCE))]


def _rl_cases() -> list[Any]:
    """Every version x region x processor of the RL tables, from the SDK's JSON files."""
    if not REFERENCE_DIR.is_dir():
        return _skipped_case(5)
    cases = []
    for framework in RL_TABLES:
        for version, entry in _reference(framework)["versions"].items():
            (py_version,) = entry["py_versions"]  # each RL image has exactly one Python
            for region, account in entry["registries"].items():
                for instance_type, processor in INSTANCE_PROCESSORS.items():
                    tag = f"{entry['tag_prefix']}-{processor}-{py_version}"
                    expected = _expected(account, region, entry["repository"], tag)
                    case_id = f"{framework}-{version}-{region}-{instance_type}"
                    cases.append(
                        pytest.param(
                            framework, version, region, instance_type, expected, id=case_id
                        )
                    )
    return cases


def _inference_cases() -> list[Any]:
    """Serving images: every version and alias, every Python, cpu and gpu, in two regions."""
    if not REFERENCE_DIR.is_dir():
        return _skipped_case(6)
    cases = []
    for framework in ("tensorflow", "mxnet", "pytorch"):
        config = _reference(framework)["inference"]
        aliases = config.get("version_aliases", {})
        for version in [*config["versions"], *aliases]:
            entry = config["versions"][aliases.get(version, version)]
            by_python = (
                {py: entry for py in entry.get("py_versions", [None])}
                if "repository" in entry
                else entry
            )
            for py_version, image in by_python.items():
                for region in ("us-west-2", "cn-north-1"):
                    if region not in image["registries"]:
                        continue
                    for instance_type in ("ml.c5.xlarge", "ml.p3.2xlarge"):
                        processor = INSTANCE_PROCESSORS[instance_type]
                        tag = "-".join(p for p in (version, processor, py_version) if p)
                        expected = _expected(
                            image["registries"][region], region, image["repository"], tag
                        )
                        case_id = f"{framework}-{version}-{py_version}-{region}-{processor}"
                        cases.append(
                            pytest.param(
                                framework,
                                version,
                                region,
                                instance_type,
                                py_version,
                                expected,
                                id=case_id,
                            )
                        )
    return cases


@pytest.mark.parametrize(
    ("framework", "version", "region", "instance_type", "expected"), _rl_cases()
)
def test_rl_image_matches_sdk_config(
    framework: str, version: str, region: str, instance_type: str, expected: str
) -> None:
    assert images.retrieve(framework, region, version, instance_type) == expected


@pytest.mark.parametrize(
    ("framework", "version", "region", "instance_type", "py_version", "expected"),
    _inference_cases(),
)
def test_inference_image_matches_sdk_config(
    framework: str,
    version: str,
    region: str,
    instance_type: str,
    py_version: str | None,
    expected: str,
) -> None:
    uri = images.retrieve(
        framework, region, version, instance_type, scope="inference", py_version=py_version
    )
    assert uri == expected


@pytest.mark.skipif(not REFERENCE_DIR.is_dir(), reason=NO_REFERENCE)
def test_special_domain_table_covers_every_non_aws_region() -> None:
    # Guards the re-derivation above: a new cn-/iso region must be added to SPECIAL_DOMAINS.
    regions = {
        region
        for framework in RL_TABLES
        for entry in _reference(framework)["versions"].values()
        for region in entry["registries"]
    }
    assert {r for r in regions if r.startswith(("cn-", "us-iso"))} == set(SPECIAL_DOMAINS)


# Printed by sagemaker.image_uris.retrieve of SDK v2.257.6 (framework, region, version,
# instance_type, image_scope, py_version).
SDK_URIS = [
    ("coach-mxnet", "us-west-2", "0.11.0", "ml.c4.4xlarge", "training", None,
     "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-mxnet:coach0.11.0-cpu-py3"),
    ("ray-tensorflow", "us-west-2", "1.6.0", "ml.p3.2xlarge", "training", None,
     "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-ray-container:"
     "ray-1.6.0-tf-gpu-py37"),
    ("coach-tensorflow", "cn-north-1", "0.11.1", "ml.c5.xlarge", "training", None,
     "422961961927.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-rl-tensorflow:"
     "coach0.11.1-cpu-py3"),
    ("coach-tensorflow", "us-iso-east-1", "0.11.0", "ml.p2.xlarge", "training", None,
     "744548109606.dkr.ecr.us-iso-east-1.c2s.ic.gov/sagemaker-rl-tensorflow:coach0.11.0-gpu-py3"),
    ("ray-tensorflow", "us-isob-east-1", "0.6.5", "ml.m5.large", "training", None,
     "453391408702.dkr.ecr.us-isob-east-1.sc2s.sgov.gov/sagemaker-rl-tensorflow:ray0.6.5-cpu-py3"),
    ("coach-mxnet", "us-gov-west-1", "0.11", "ml.g4dn.xlarge", "training", None,
     "246785580436.dkr.ecr.us-gov-west-1.amazonaws.com/sagemaker-rl-mxnet:coach0.11-gpu-py3"),
    ("ray-pytorch", "us-east-1", "1.6.0", "local", "training", None,
     "462105765813.dkr.ecr.us-east-1.amazonaws.com/sagemaker-rl-ray-container:"
     "ray-1.6.0-torch-cpu-py36"),
    ("coach-tensorflow", "eu-west-1", "1.0.0", "local_gpu", "training", None,
     "462105765813.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-rl-coach-container:"
     "coach-1.0.0-tf-gpu-py3"),
    ("ray-tensorflow", "cn-northwest-1", "0.5", "ml.p3.2xlarge", "training", None,
     "423003514399.dkr.ecr.cn-northwest-1.amazonaws.com.cn/sagemaker-rl-tensorflow:ray0.5-gpu-py3"),
    ("vw", "us-west-2", "8.7.0", "ml.c5.xlarge", "training", None,
     "462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-vw-container:vw-8.7.0-cpu"),
    ("tensorflow", "us-west-2", "1.12", "ml.c5.large", "inference", None,
     "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow-serving:1.12-cpu"),
    ("tensorflow", "cn-north-1", "1.12", "ml.p3.2xlarge", "inference", None,
     "422961961927.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-tensorflow-serving:1.12-gpu"),
    ("tensorflow", "us-iso-east-1", "2.6", "ml.c5.large", "inference", None,
     "886529160074.dkr.ecr.us-iso-east-1.c2s.ic.gov/tensorflow-inference:2.6-cpu"),
    ("mxnet", "us-west-2", "1.3", "ml.c5.large", "inference", "py3",
     "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.3-cpu-py3"),
    ("mxnet", "us-west-2", "1.4.1", "ml.p3.2xlarge", "inference", "py2",
     "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet-serving:1.4.1-gpu-py2"),
    ("mxnet", "us-west-2", "1.4.1", "ml.p3.2xlarge", "inference", "py3",
     "763104351884.dkr.ecr.us-west-2.amazonaws.com/mxnet-inference:1.4.1-gpu-py3"),
    ("pytorch", "us-west-2", "2.6.0", "ml.c5.large", "inference", None,
     "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"),
    ("pytorch", "us-gov-west-1", "2.6", "ml.g5.xlarge", "inference", None,
     "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com/pytorch-inference:2.6-gpu-py312"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("framework", "region", "version", "instance_type", "scope", "py_version", "expected"),
    SDK_URIS,
    ids=[f"{c[0]}-{c[2]}-{c[1]}-{c[3]}-{c[5]}" for c in SDK_URIS],
)
def test_literal_sdk_uris(
    framework: str,
    region: str,
    version: str,
    instance_type: str,
    scope: str,
    py_version: str | None,
    expected: str,
) -> None:
    uri = images.retrieve(
        framework, region, version, instance_type, scope=scope, py_version=py_version
    )
    assert uri == expected


def test_mxnet_inference_defaults_to_py3_among_several() -> None:
    # The SDK requires py_version here; defaulting to py3 is ours (RLEstimator serves py3).
    uri = images.retrieve("mxnet", "us-west-2", "1.3", "ml.c5.large", scope="inference")
    assert uri == "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.3-cpu-py3"


@pytest.mark.parametrize(
    ("instance_type", "processor"),
    [
        ("local", "cpu"),
        ("local_cpu", "cpu"),
        ("local_gpu", "gpu"),
        ("ml.c5.xlarge", "cpu"),
        ("ml.m5.large", "cpu"),
        ("ml.t3.medium", "cpu"),
        ("ml.inf1.xlarge", "cpu"),
        ("ml.p3.2xlarge", "gpu"),
        ("ml.p4d.24xlarge", "gpu"),
        ("ml.g4dn.xlarge", "gpu"),
        ("ml.g5.48xlarge", "gpu"),
    ],
)
def test_processor_for(instance_type: str, processor: str) -> None:
    assert images.processor_for(instance_type) == processor


@pytest.mark.parametrize(
    "instance_type", ["", "c5.xlarge", "ml.c5", "ML.C5.XLARGE", "local_tpu", "ml..xlarge", "gpu"]
)
def test_bad_instance_type_is_a_config_error(instance_type: str) -> None:
    with pytest.raises(RLConfigError) as raised:
        images.retrieve("coach-tensorflow", "us-west-2", "0.11.1", instance_type)
    assert not isinstance(raised.value, ImageNotFoundError)
    message = str(raised.value)
    assert repr(instance_type) in message
    assert "'local_gpu'" in message
    assert "ml.<family>.<size>" in message


@pytest.mark.parametrize(
    ("region", "domain"),
    [
        ("us-west-2", "amazonaws.com"),
        ("eu-central-1", "amazonaws.com"),
        ("us-gov-west-1", "amazonaws.com"),
        ("cn-north-1", "amazonaws.com.cn"),
        ("cn-northwest-1", "amazonaws.com.cn"),
        ("us-iso-east-1", "c2s.ic.gov"),
        ("us-isob-east-1", "sc2s.sgov.gov"),
    ],
)
def test_domain_for_region(region: str, domain: str) -> None:
    assert images.domain_for_region(region) == domain


def test_unknown_version_lists_supported_versions() -> None:
    with pytest.raises(ImageNotFoundError) as raised:
        images.retrieve("coach-tensorflow", "us-west-2", "9.9", "ml.c5.xlarge")
    message = str(raised.value)
    assert message.startswith(
        "Unsupported coach-tensorflow version '9.9' (scope training). "
        "Supported versions: 0.10, 0.10.1, 0.11, 0.11.0, 0.11.1, 1.0.0."
    )
    assert "image_uri=" in message


def test_unknown_region_lists_supported_regions() -> None:
    # ray-pytorch images exist in 13 regions only; af-south-1 is not one of them.
    with pytest.raises(ImageNotFoundError) as raised:
        images.retrieve("ray-pytorch", "af-south-1", "1.6.0", "ml.c5.xlarge")
    message = str(raised.value)
    assert "'af-south-1'" in message
    assert "Supported regions: ap-northeast-1, ap-northeast-2, " in message
    assert "us-west-1, us-west-2." in message
    assert "image_uri=" in message


def test_gpu_where_only_cpu_exists_lists_processors() -> None:
    with pytest.raises(ImageNotFoundError) as raised:
        images.retrieve("vw", "us-west-2", "8.7.0", "ml.p3.2xlarge")
    message = str(raised.value)
    assert "No gpu image for vw 8.7.0" in message
    assert "'ml.p3.2xlarge'" in message
    assert "Supported processors: cpu." in message
    assert "image_uri=" in message


def test_unsupported_py_version_lists_available_ones() -> None:
    with pytest.raises(ImageNotFoundError, match=r"'py3' .*Supported Python versions: py36\."):
        images.retrieve("ray-pytorch", "us-west-2", "1.6.0", "ml.c5.xlarge", py_version="py3")


@pytest.mark.parametrize(
    ("framework", "scope"), [("ray-mxnet", "training"), ("tensorflow", "training")]
)
def test_unknown_framework_or_scope_lists_known_images(framework: str, scope: str) -> None:
    with pytest.raises(ImageNotFoundError) as raised:
        images.retrieve(framework, "us-west-2", "1.0", "ml.c5.xlarge", scope=scope)
    message = str(raised.value)
    assert f"{framework!r}" in message
    assert "coach-tensorflow (training)" in message
    assert "tensorflow (inference)" in message


def test_supported_versions_in_version_order() -> None:
    assert images.supported_versions("ray-tensorflow") == [
        "0.5", "0.5.3", "0.6", "0.6.5", "0.8.2", "0.8.5", "1.6.0"
    ]  # fmt: skip
    serving = images.supported_versions("tensorflow", scope="inference")
    assert {"1.12", "1.12.0", "2.19.0"} <= set(serving)
    assert serving.index("1.9.0") < serving.index("1.10") < serving.index("1.10.0")


def test_supported_regions() -> None:
    regions = images.supported_regions("ray-pytorch", "1.6.0")
    assert regions == sorted(regions)
    assert len(regions) == 13
    assert "us-west-2" in regions
    assert "cn-north-1" not in regions
    # An alias resolves to its full version; per-Python images are merged.
    assert "cn-north-1" in images.supported_regions("mxnet", "1.4", scope="inference")


@pytest.mark.skipif(not REFERENCE_DIR.is_dir(), reason=NO_REFERENCE)
def test_generator_reproduces_committed_table() -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_image_tables", REPO_ROOT / "tools" / "generate_image_tables.py"
    )
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (
        importlib.resources.files("rl_provider.core") / "data" / "image_uris.json"
    ).read_text(encoding="utf-8")
    assert generator.render(REFERENCE_DIR) == committed


def test_table_is_not_read_at_import() -> None:
    code = (
        "import rl_provider.core.images as m; "
        "assert m._tables.cache_info().currsize == 0, 'table loaded at import'"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
