"""The SageMaker backend's S3: code upload (skipped when the sha256 matches), model repacking,
and the default bucket created on first use."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from rl_provider.backends.sagemaker.calls import call, error_code, translate
from rl_provider.backends.sagemaker.clients import SageMakerClients
from rl_provider.backends.sagemaker.requests import split_s3_uri
from rl_provider.core.packaging import repack_model, sha256_file
from rl_provider.exceptions import AWSAccessDeniedError, RLConfigError

log = logging.getLogger(__name__)

__all__ = ["SHA256_METADATA_KEY", "SageMakerS3"]

# S3 user metadata key holding the archive's sha256 (x-amz-meta-sha256): the upload cache key.
SHA256_METADATA_KEY = "sha256"


class SageMakerS3(SageMakerClients):
    """Code and model archives on S3."""

    def upload_code(self, archive: Path, uri: str) -> str:
        """Put ``archive`` at ``uri`` unless an object with the same sha256 is already there."""
        bucket, key = split_s3_uri(uri, "Code location")
        if not key:
            raise RLConfigError(f"Code location {uri!r} names a bucket but no object key.")
        self.ensure_bucket(bucket)
        digest = sha256_file(archive)
        s3 = self.client("s3")
        from botocore.exceptions import ClientError

        try:
            head = call(s3, "head_object", self.retry, raw=True, Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) not in ("404", "NoSuchKey", "NotFound"):
                raise translate(err, "s3") from err
            head = None
        if head is not None and head.get("Metadata", {}).get(SHA256_METADATA_KEY) == digest:
            log.info("%s already holds this code (sha256 %s): upload skipped", uri, digest[:12])
            return uri
        # One PutObject, bytes in memory: a retry resends the same body (archives are small).
        body = Path(archive).read_bytes()
        self._call(
            "s3",
            "put_object",
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata={SHA256_METADATA_KEY: digest},
        )
        log.info("Uploaded %s (%d bytes, sha256 %s)", uri, len(body), digest[:12])
        return uri

    def repack_model(self, model_data: str, code: Path | str, uri: str) -> str:
        """``model.tar.gz`` with ``code`` added as ``code/``, uploaded to ``uri``.

        ``code`` is a local directory or ``sourcedir.tar.gz``, or the ``s3://`` URI of one (a
        training job's code). SageMaker's framework inference images load the handler and
        install ``requirements.txt`` from ``/opt/ml/model/code``; ``RLModel`` uses this for
        custom images and Ray policies (SDK v2: ``sagemaker.utils.repack_model``).
        """
        with tempfile.TemporaryDirectory(prefix="rl-provider-repack-") as tmp:
            original = self._download(model_data, Path(tmp) / "original.tar.gz", "model_data")
            if isinstance(code, str):
                code = self._download(code, Path(tmp) / "sourcedir.tar.gz", "Model code")
            repacked = repack_model(original, Path(code), Path(tmp) / "model.tar.gz")
            return self.upload_code(repacked.path, uri)

    def _download(self, uri: str, target: Path, what: str) -> Path:
        bucket, key = split_s3_uri(uri, what)
        body = self._call("s3", "get_object", Bucket=bucket, Key=key)["Body"]
        target.write_bytes(body.read())
        return target

    def ensure_bucket(self, bucket: str) -> None:
        """Create the backend's bucket when it is missing (SDK ``default_bucket()``).

        Other buckets (an estimator's own ``output_path``/``code_location``) must exist: a typo
        there should fail, not create a bucket.
        """
        if bucket in self._ensured_buckets or bucket != self.bucket:
            return
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        try:
            call(s3, "head_bucket", self.retry, raw=True, Bucket=bucket)
        except ClientError as err:
            code = error_code(err)
            if code in ("403", "AccessDenied"):
                raise AWSAccessDeniedError(
                    f"S3 refused HeadBucket on the default bucket {bucket!r} ({code}): the name "
                    "belongs to another account, or the aws connection lacks s3:ListBucket on "
                    "it. Fix: pass bucket= (the rl connection's bucket extra) with a bucket you "
                    "own, or grant the permission."
                ) from err
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise translate(err, "s3") from err
            kwargs: dict[str, Any] = {"Bucket": bucket}
            # us-east-1 is S3's default location and refuses an explicit LocationConstraint.
            if self.region and self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                call(s3, "create_bucket", self.retry, raw=True, **kwargs)
                log.info("Created the default bucket s3://%s", bucket)
            except ClientError as create_err:
                # Another process created it meanwhile (SDK Session._create_s3_bucket_if_...).
                if error_code(create_err) not in ("BucketAlreadyOwnedByYou", "OperationAborted"):
                    raise translate(create_err, "s3") from create_err
        self._ensured_buckets.add(bucket)
