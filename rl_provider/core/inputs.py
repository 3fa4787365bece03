"""Training input channels: what ``fit(inputs=...)`` accepts, turned into ``InputDataConfig``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_provider.exceptions import RLConfigError

# SageMaker ChannelName rule.
_CHANNEL_RE = re.compile(r"[A-Za-z0-9\.\-_]+")  # fullmatch: "$" accepts a trailing "\n"
SUPPORTED_SCHEMES = ("s3://", "file://")


def to_uri(location: str) -> str:
    """``s3://`` and ``file://`` URIs as they are; a plain local path becomes a ``file://`` URI."""
    if location.startswith(SUPPORTED_SCHEMES):
        return location
    if "://" in location:
        raise RLConfigError(
            f"Unsupported data location {location!r}: use an s3:// URI, a file:// URI or a "
            "local path."
        )
    return Path(os.path.abspath(location)).as_uri()


# sagemaker.inputs (SDK v2.257.7): FileSystemInput's allowed values.
FILE_SYSTEM_TYPES = ("FSxLustre", "EFS")
FILE_SYSTEM_ACCESS_MODES = ("ro", "rw")


@dataclass(frozen=True, slots=True)
class TrainingInput:
    """One channel's S3 data source and options: ``sagemaker.inputs.TrainingInput``'s fields,
    in its order (``TrainingInput("s3://bucket/data", input_mode="Pipe")`` works as in the SDK).

    ``s3_data`` may also be a ``file://`` URI or a local path (local backend). ``config`` is the
    channel without its name, as the SDK's attribute of the same name.
    """

    s3_data: str
    distribution: str | None = None
    compression: str | None = None
    content_type: str | None = None
    record_wrapping: str | None = None
    s3_data_type: str = "S3Prefix"
    instance_groups: Sequence[str] | None = None
    input_mode: str | None = None
    attribute_names: Sequence[str] | None = None
    target_attribute_name: str | None = None
    shuffle_config: Any = None
    hub_access_config: Mapping[str, Any] | None = None
    model_access_config: Mapping[str, Any] | None = None

    @property
    def config(self) -> dict[str, Any]:
        source: dict[str, Any] = {
            "S3DataType": self.s3_data_type,
            "S3Uri": to_uri(self.s3_data),
            "S3DataDistributionType": self.distribution or "FullyReplicated",
        }
        if self.attribute_names:
            source["AttributeNames"] = list(self.attribute_names)
        if self.instance_groups:
            source["InstanceGroupNames"] = list(self.instance_groups)
        if self.hub_access_config:
            source["HubAccessConfig"] = dict(self.hub_access_config)
        if self.model_access_config:
            source["ModelAccessConfig"] = dict(self.model_access_config)
        config: dict[str, Any] = {"DataSource": {"S3DataSource": source}}
        optional = {
            "CompressionType": self.compression,
            "ContentType": self.content_type,
            "RecordWrapperType": self.record_wrapping,
            "InputMode": self.input_mode,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        if self.target_attribute_name is not None:
            raise RLConfigError(
                "TrainingInput(target_attribute_name=...) has no CreateTrainingJob field (SDK "
                "v2.257.7's own botocore rejects it too): drop it."
            )
        if self.shuffle_config is not None:
            seed = getattr(self.shuffle_config, "seed", None)
            if seed is None and isinstance(self.shuffle_config, Mapping):
                seed = self.shuffle_config.get("Seed")
            if not isinstance(seed, int):
                raise RLConfigError(
                    f"shuffle_config={self.shuffle_config!r}: pass ShuffleConfig(seed=<int>) or "
                    "{'Seed': <int>}."
                )
            config["ShuffleConfig"] = {"Seed": seed}
        return config

    def channel(self, name: str) -> dict[str, Any]:
        return {"ChannelName": name, **self.config}


@dataclass(frozen=True, slots=True)
class FileSystemInput:
    """An EFS or FSx for Lustre channel: ``sagemaker.inputs.FileSystemInput`` (SageMaker only)."""

    file_system_id: str
    file_system_type: str
    directory_path: str
    file_system_access_mode: str = "ro"
    content_type: str | None = None

    def __post_init__(self) -> None:
        # The SDK raises ValueError for these; RLConfigError is one.
        if self.file_system_type not in FILE_SYSTEM_TYPES:
            raise RLConfigError(
                f"Unrecognized file system type: {self.file_system_type}. Valid values: "
                f"{', '.join(FILE_SYSTEM_TYPES)}."
            )
        if self.file_system_access_mode not in FILE_SYSTEM_ACCESS_MODES:
            raise RLConfigError(
                f"Unrecognized file system access mode: {self.file_system_access_mode}. Valid "
                f"values: {', '.join(FILE_SYSTEM_ACCESS_MODES)}."
            )

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "DataSource": {
                "FileSystemDataSource": {
                    "FileSystemId": self.file_system_id,
                    "FileSystemType": self.file_system_type,
                    "DirectoryPath": self.directory_path,
                    "FileSystemAccessMode": self.file_system_access_mode,
                }
            }
        }
        if self.content_type:
            config["ContentType"] = self.content_type
        return config

    def channel(self, name: str) -> dict[str, Any]:
        return {"ChannelName": name, **self.config}


def _sdk_config(source: object) -> Mapping[str, Any] | None:
    """The ``config`` of an SDK ``TrainingInput``/``FileSystemInput`` (duck-typed), else None."""
    config = getattr(source, "config", None)
    if isinstance(config, Mapping) and "DataSource" in config:
        return config
    return None


def _is_single_input(inputs: object) -> bool:
    return isinstance(inputs, str) or _sdk_config(inputs) is not None


def input_mode_override(inputs: object) -> str | None:
    """A single ``TrainingInput`` with ``input_mode`` sets the job's TrainingInputMode (SDK)."""
    config = _sdk_config(inputs)
    if config is None:
        return None
    mode = config.get("InputMode")
    return str(mode) if mode else None


def input_data_config(inputs: object) -> list[dict[str, Any]]:
    """``inputs`` as SageMaker's ``InputDataConfig``.

    A string or a single input object is the ``training`` channel (SDK rule); a dict maps
    channel names to strings, ``TrainingInput``/``FileSystemInput`` objects (ours or the SDK's,
    duck-typed by their ``config``) or complete ``Channel`` dicts.
    """
    if inputs is None:
        return []
    if _is_single_input(inputs):
        inputs = {"training": inputs}
    if not isinstance(inputs, Mapping):
        raise RLConfigError(
            f"inputs must be a URI string, a TrainingInput, a FileSystemInput or a dict of "
            "channel name to those, "
            f"not {type(inputs).__name__}."
        )
    channels = []
    for name, source in inputs.items():
        if not isinstance(name, str) or not _CHANNEL_RE.fullmatch(name):
            raise RLConfigError(
                f"Invalid channel name {name!r}: use letters, digits, '.', '-' and '_'."
            )
        config = _sdk_config(source)
        if isinstance(source, str):
            channels.append(TrainingInput(source).channel(name))
        elif isinstance(source, TrainingInput | FileSystemInput):
            channels.append(source.channel(name))
        elif config is not None:  # the SDK's own objects: their config
            channel = {"ChannelName": name, **_json_copy(config)}
            s3 = channel["DataSource"].get("S3DataSource")
            if s3 is not None and "S3Uri" in s3:
                s3["S3Uri"] = to_uri(str(s3["S3Uri"]))  # a local path works as with ours
            channels.append(channel)
        elif isinstance(source, Mapping) and "DataSource" in source:
            channels.append({**source, "ChannelName": name})
        else:
            raise RLConfigError(
                f"Channel {name!r} is {source!r}: give a URI string, a TrainingInput, a "
                "FileSystemInput or a "
                "Channel dict with a DataSource."
            )
    return channels


def _json_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value
