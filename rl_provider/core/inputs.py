"""Training input channels: what ``fit(inputs=...)`` accepts, turned into ``InputDataConfig``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingInput:
    """One channel's data source and options (the SDK's ``sagemaker.inputs.TrainingInput``).

    ``s3_data`` may be an ``s3://`` URI, a ``file://`` URI or a local path (local backend).
    """

    s3_data: str
    distribution: str = "FullyReplicated"
    s3_data_type: str = "S3Prefix"
    compression: str | None = None
    content_type: str | None = None
    record_wrapping: str | None = None
    input_mode: str | None = None

    def channel(self, name: str) -> dict[str, Any]:
        channel: dict[str, Any] = {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": self.s3_data_type,
                    "S3Uri": to_uri(self.s3_data),
                    "S3DataDistributionType": self.distribution,
                }
            },
        }
        optional = {
            "CompressionType": self.compression,
            "ContentType": self.content_type,
            "RecordWrapperType": self.record_wrapping,
            "InputMode": self.input_mode,
        }
        channel.update({key: value for key, value in optional.items() if value is not None})
        return channel


def input_data_config(inputs: object) -> list[dict[str, Any]]:
    """``inputs`` as SageMaker's ``InputDataConfig``.

    A string is the ``training`` channel (SDK rule); a dict maps channel names to strings,
    ``TrainingInput`` objects or complete ``Channel`` dicts.
    """
    if inputs is None:
        return []
    if isinstance(inputs, str | TrainingInput):
        inputs = {"training": inputs}
    if not isinstance(inputs, Mapping):
        raise RLConfigError(
            f"inputs must be a URI string, a TrainingInput or a dict of channel name to those, "
            f"not {type(inputs).__name__}."
        )
    channels = []
    for name, source in inputs.items():
        if not isinstance(name, str) or not _CHANNEL_RE.fullmatch(name):
            raise RLConfigError(
                f"Invalid channel name {name!r}: use letters, digits, '.', '-' and '_'."
            )
        if isinstance(source, str):
            channels.append(TrainingInput(s3_data=source).channel(name))
        elif isinstance(source, TrainingInput):
            channels.append(source.channel(name))
        elif isinstance(source, Mapping) and "DataSource" in source:
            channels.append({**source, "ChannelName": name})
        else:
            raise RLConfigError(
                f"Channel {name!r} is {source!r}: give a URI string, a TrainingInput or a "
                "Channel dict with a DataSource."
            )
    return channels
