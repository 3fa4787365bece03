"""Moving data in and out of a local job: ``file://`` always, ``s3://`` when AWS is configured."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from rl_provider.backends.local import files
from rl_provider.core.packaging import pack_directory
from rl_provider.exceptions import RLConfigError


def file_path(uri: str) -> Path:
    """The local path of a ``file://`` URI."""
    return Path(unquote(urlparse(uri).path))


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


# Credentials handed over by the process that started this one (see ``credentials_for``): the
# runner and the model server run with a scrubbed environment and keep these in memory only.
_handed_over: dict[str, Any] = {}


def credentials_for(uris: list[str]) -> str:
    """The caller's resolved AWS credentials as one JSON line for a child's stdin, when any of
    ``uris`` is on S3; "" otherwise (the child then never sees a credential)."""
    if not any(uri.startswith("s3://") for uri in uris):
        return ""
    s3_client()  # a clear error without boto3 or credentials
    import boto3

    current = boto3.Session()
    frozen = current.get_credentials().get_frozen_credentials()
    return json.dumps(
        {
            "session": {
                "aws_access_key_id": frozen.access_key,
                "aws_secret_access_key": frozen.secret_key,
                "aws_session_token": frozen.token,
                "region_name": current.region_name,
            },
            "endpoint_url": os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"),
        }
    )


def receive_credentials(line: str) -> None:
    """Keep the credentials a parent wrote on stdin (an empty line: none)."""
    _handed_over.clear()
    if line.strip():
        _handed_over.update(json.loads(line))


def s3_client() -> Any:
    """A boto3 S3 client, or a clear error when boto3 or AWS credentials are missing."""
    try:
        import boto3
    except ImportError:
        raise RLConfigError(
            "s3:// locations on the local backend need boto3: pip install boto3, or use file:// "
            "URIs / local paths."
        ) from None
    if _handed_over:
        return boto3.Session(**_handed_over["session"]).client(
            "s3", endpoint_url=_handed_over.get("endpoint_url")
        )
    session = boto3.Session()
    if session.get_credentials() is None:
        raise RLConfigError(
            "s3:// locations on the local backend need AWS credentials, and none are configured "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials): configure them or use file:// "
            "URIs / local paths."
        )
    return session.client("s3")


def check_readable(uri: str, what: str) -> None:
    """Fail before anything is created when a source cannot be read."""
    if uri.startswith("file://"):
        if not file_path(uri).exists():
            raise RLConfigError(f"{what} {uri!r} does not exist: check the path.")
    elif uri.startswith("s3://"):
        s3_client()
    else:
        raise RLConfigError(f"{what} {uri!r} must be a file:// or s3:// URI.")


def check_writable(uri: str, what: str) -> None:
    """Fail before anything is created when a destination cannot be written (a read-only
    output path used to train the whole job and then fail in packaging)."""
    if uri.startswith("s3://"):
        s3_client()
        return
    if not uri.startswith("file://"):
        raise RLConfigError(f"{what} {uri!r} must be a file:// or s3:// URI.")
    path = file_path(uri)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    if not existing.is_dir() and existing != path:
        raise RLConfigError(f"{what} {uri!r}: {existing} is a file, not a directory.")
    directory = existing if existing.is_dir() else existing.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RLConfigError(
            f"{what} {uri!r} cannot be written: {directory} is not writable by this user; pick "
            "a writable location."
        )


@contextlib.contextmanager
def local_copy(uri: str, scratch: Path) -> Iterator[Path]:
    """A local path holding the object at ``uri`` for the duration of the block."""
    if uri.startswith("file://"):
        yield file_path(uri)
        return
    bucket, key = _split_s3(uri)
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / Path(key).name
    s3_client().download_file(bucket, key, str(target))
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


def stage(uri: str, dest: Path) -> None:
    """Copy a channel's data into ``dest`` (a copy: the job cannot modify the source)."""
    dest.mkdir(parents=True, exist_ok=True)
    if uri.startswith("file://"):
        source = file_path(uri)
        if source.is_dir():
            shutil.copytree(source, dest, symlinks=False, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / source.name)
        return
    bucket, prefix = _split_s3(uri)
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :].lstrip("/") or Path(item["Key"]).name
            target = (dest / relative).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise RLConfigError(f"S3 key {item['Key']!r} would land outside the channel.")
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(target))


def publish_directory(source: Path, uri: str, scratch: Path) -> None:
    """``source``'s contents as the tar.gz at ``uri``, written in place (atomically) at a
    file:// location; only an s3:// upload packs a local copy first, deleted after."""
    if not uri.startswith("s3://"):
        pack_directory(source, file_path(uri))
        return
    scratch.mkdir(parents=True, exist_ok=True)
    archive = scratch / Path(_split_s3(uri)[1]).name
    try:
        pack_directory(source, archive)
        publish(archive, uri)
    finally:
        archive.unlink(missing_ok=True)


def publish(local: Path, uri: str) -> None:
    """Put ``local`` at ``uri`` atomically: a reader sees the whole file or none of it."""
    if uri.startswith("s3://"):
        bucket, key = _split_s3(uri)
        s3_client().upload_file(str(local), bucket, key)  # S3 objects appear whole
        return
    target = file_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(local, tmp)
        os.chmod(tmp, files.PUBLISHED_MODE)  # mkstemp makes it 0600 (docs/RELIABILITY.md)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
