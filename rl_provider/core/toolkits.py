"""Which toolkit, version and framework combinations exist, and their images' names.

The table is SageMaker SDK v2.257.6's ``TOOLKIT_FRAMEWORK_VERSION_MAP`` (13 versions) plus Ray 2.x
with PyTorch or TensorFlow, which only the local backend runs (no SageMaker image exists).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from rl_provider.core.enums import RLFramework, RLToolkit
from rl_provider.exceptions import RLUnsupportedCombinationError

# toolkit -> toolkit version -> framework -> framework version (sagemaker.rl.estimator).
TOOLKIT_FRAMEWORK_VERSION_MAP: dict[str, dict[str, dict[str, str]]] = {
    "coach": {
        "0.10.1": {"tensorflow": "1.11"},
        "0.10": {"tensorflow": "1.11"},
        "0.11.0": {"tensorflow": "1.11", "mxnet": "1.3"},
        "0.11.1": {"tensorflow": "1.12"},
        "0.11": {"tensorflow": "1.12", "mxnet": "1.3"},
        "1.0.0": {"tensorflow": "1.12"},
    },
    "ray": {
        "0.5.3": {"tensorflow": "1.11"},
        "0.5": {"tensorflow": "1.11"},
        "0.6.5": {"tensorflow": "1.12"},
        "0.6": {"tensorflow": "1.12"},
        "0.8.2": {"tensorflow": "2.1"},
        "0.8.5": {"tensorflow": "2.1", "pytorch": "1.5"},
        "1.6.0": {"tensorflow": "2.5.0", "pytorch": "1.8.1"},
    },
}
# Ray 2.x (any 2.N or 2.N.M): local backend only, new API stack.
RAY2_VERSION = re.compile(r"^2\.\d+(\.\d+)?$")
RAY2_FRAMEWORKS = (RLFramework.PYTORCH, RLFramework.TENSORFLOW)

# Ray models are served on SageMaker's PyTorch inference image with the built-in RLlib handler
# (the SDK refused to deploy Ray models); this is the newest PyTorch inference version we ship.
RAY_SERVING_PYTORCH_VERSION = "2.6.0"

# Repository -> framework of the SDK-era RL images, for attach(): sagemaker-rl-<fw>:<tk><ver>-...
_LEGACY_IMAGE = re.compile(
    r"^(?:[^/]+/)?sagemaker-rl-(tensorflow|mxnet|pytorch):([a-z]*)(\d[^-]*)-(cpu|gpu)-(py2|py3)$"
)
# sagemaker-rl-ray-container:ray-1.6.0-tf-gpu-py37 / sagemaker-rl-coach-container:coach-1.0.0-tf-...
_CONTAINER_IMAGE = re.compile(
    r"^(?:[^/]+/)?sagemaker-rl-(?:ray|coach)-container:(ray|coach)-(\d[^-]*)-(tf|torch)-(cpu|gpu)-py\d+$"
)
# Our name for the image a local Ray 2.x job stands for: rl-provider/ray:2.40.0-torch-cpu-py311.
_LOCAL_IMAGE = re.compile(r"^rl-provider/(ray|coach):(\d[^-]*)-(tf|torch)-(cpu|gpu)-py\d+$")
# sagemaker.fw_utils.framework_name_from_image (SDK v2.257.7): images of SageMaker's framework
# containers, current (sagemaker-<fw>:<ver>-<device>-<py>, <fw>-training:...) and legacy
# (sagemaker-<fw>-<py>-<device>:<tag>) names, and xgboost's short tag.
_ECR_IMAGE = re.compile(r"^\d+\.dkr\.ecr\.[^/]+/(?P<name>.*:.*)$")
_FRAMEWORK_IMAGE = re.compile(
    r"^(?:sagemaker(?:-rl)?-)?(tensorflow|mxnet|chainer|pytorch|pytorch-trcomp|scikit-learn|"
    r"xgboost|huggingface-tensorflow|huggingface-pytorch|huggingface-tensorflow-trcomp|"
    r"huggingface-pytorch-trcomp)(?:-)?(scriptmode|training)?:(.*)-(.*?)-(py2|py3\d*)(?:.*)$"
)
_LEGACY_FRAMEWORK_IMAGE = re.compile(r"^sagemaker-(tensorflow|mxnet)-(py2|py3)-(cpu|gpu):(.*)$")
_XGBOOST_SHORT_IMAGE = re.compile(r"^sagemaker-(xgboost):(.*)$")
_SHORT_FRAMEWORK = {"tf": RLFramework.TENSORFLOW, "torch": RLFramework.PYTORCH}


def is_ray2(toolkit: RLToolkit, version: str) -> bool:
    return toolkit is RLToolkit.RAY and bool(RAY2_VERSION.match(version))


def framework_version(toolkit: RLToolkit, version: str, framework: RLFramework) -> str | None:
    """The framework version the SDK table pairs with; None for a Ray 2.x combination."""
    if is_ray2(toolkit, version):
        return None
    return TOOLKIT_FRAMEWORK_VERSION_MAP[toolkit.value][version][framework.value]


def is_supported(toolkit: RLToolkit, version: str, framework: RLFramework) -> bool:
    if is_ray2(toolkit, version):
        return framework in RAY2_FRAMEWORKS
    return framework.value in TOOLKIT_FRAMEWORK_VERSION_MAP[toolkit.value].get(version, {})


def check_supported(toolkit: RLToolkit, version: str, framework: RLFramework) -> None:
    """Raise the SDK's "combination is not supported" error (an ``AttributeError`` too)."""
    if not is_supported(toolkit, version, framework):
        supported = ", ".join(
            f"{v}+{'/'.join(fws)}"
            for v, fws in TOOLKIT_FRAMEWORK_VERSION_MAP[toolkit.value].items()
        )
        extra = (
            "; ray 2.x with pytorch or tensorflow (local backend)"
            if toolkit is RLToolkit.RAY
            else ""
        )
        raise RLUnsupportedCombinationError(
            f"Provided `{toolkit.value}-{version}` and `{framework.value}` combination is not "
            f"supported. Supported {toolkit.value} versions: {supported}{extra}. "
            "Pass image_uri= for any other image."
        )


def local_image_name(
    toolkit: RLToolkit, version: str, framework: RLFramework, processor: str
) -> str:
    """The image name recorded for a job no SageMaker image exists for (Ray 2.x, local only)."""
    short = "torch" if framework is RLFramework.PYTORCH else "tf"
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return f"rl-provider/{toolkit.value}:{version}-{short}-{processor}-{py}"


@dataclass(frozen=True, slots=True)
class ParsedImage:
    toolkit: RLToolkit
    toolkit_version: str
    framework: RLFramework


def is_framework_image(image_uri: str) -> bool:
    """Whether the SDK reads ``image_uri`` as one of SageMaker's framework images."""
    match = _ECR_IMAGE.match(image_uri)
    if match is None:
        return False
    name = match["name"]
    return any(
        pattern.match(name)
        for pattern in (_FRAMEWORK_IMAGE, _LEGACY_FRAMEWORK_IMAGE, _XGBOOST_SHORT_IMAGE)
    )


def parse_image(image_uri: str) -> ParsedImage | None:
    """Toolkit, version and framework an RL image was built for; None for a custom image.

    Parses the SDK's ``sagemaker-rl-<fw>:<toolkit><ver>-<cpu|gpu>-py3`` form, the newer
    ``sagemaker-rl-ray-container`` / ``-coach-container`` tags and our local Ray 2.x names.
    """
    match = _LEGACY_IMAGE.match(image_uri)
    if match:
        framework, toolkit, version = match.group(1), match.group(2), match.group(3)
        if toolkit not in ("coach", "ray"):
            return None
        return ParsedImage(RLToolkit(toolkit), version, RLFramework(framework))
    match = _CONTAINER_IMAGE.match(image_uri) or _LOCAL_IMAGE.match(image_uri)
    if match:
        toolkit, version, short = match.group(1), match.group(2), match.group(3)
        return ParsedImage(RLToolkit(toolkit), version, _SHORT_FRAMEWORK[short])
    return None
