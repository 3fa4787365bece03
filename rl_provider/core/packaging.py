"""Source and artifact archives: ``sourcedir.tar.gz``, ``model.tar.gz`` and a safe extractor.

The layout is SageMaker's (SDK v2 ``sagemaker.utils.create_tar_file`` / ``tar_and_upload_dir``):
``source_dir``'s contents at the archive root, each dependency as a top-level entry named by its
basename, and only the entry point file when there is no ``source_dir``.

Beyond the SDK, every archive is deterministic (entries sorted, mtime 0, owner 0/"" and modes
normalised, gzip header without mtime or file name), so its sha256 is a cache key: the SageMaker
backend skips the upload when an object with the same digest is already there. Archives are read
back with ``safe_extract`` (``rl_provider.core.extraction``, re-exported here). ``.git``,
``__pycache__`` and ``*.pyc`` are left out of source archives, and a symlink must stay inside the
tree it belongs to (it is stored as a relative symlink), so an archive never carries a path that
only exists on the machine that built it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pathlib
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rl_provider.core.extraction import safe_extract
from rl_provider.exceptions import RLConfigError

__all__ = [
    "SOURCEDIR_ARCHIVE_NAME",
    "SourceArchive",
    "build_sourcedir",
    "pack_directory",
    "repack_model",
    "safe_extract",
    "sha256_file",
    "validate_source",
]

log = logging.getLogger(__name__)

SOURCEDIR_ARCHIVE_NAME = "sourcedir.tar.gz"

# Version-control metadata and bytecode: they change with every checkout or import without the
# code changing, so keeping them would break the sha256 cache key (and bloat the upload).
_EXCLUDED_NAMES = frozenset({".git", "__pycache__"})
_EXCLUDED_SUFFIXES = (".pyc",)
_DIR_MODE = 0o755
_EXEC_FILE_MODE = 0o755
_FILE_MODE = 0o644
_LINK_MODE = 0o777
_GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceArchive:
    """A written archive: where it is, its sha256 (hex) and its size in bytes."""

    path: pathlib.Path
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    """One archive member: a directory, a regular file (read from ``path``) or a symlink."""

    arcname: str
    kind: Literal["dir", "file", "symlink"]
    path: pathlib.Path | None = None
    linkname: str = ""


def _is_s3(uri: str) -> bool:
    # The SDK's own test (``source_dir.lower().startswith("s3://")``).
    return uri.lower().startswith("s3://")


def _is_excluded(name: str) -> bool:
    return name in _EXCLUDED_NAMES or name.endswith(_EXCLUDED_SUFFIXES)


def _dependency_name(dependency: str) -> str:
    # ``abspath`` normalises "lib/" and "." lexically without following a symlinked dependency,
    # which keeps the name the user gave (the SDK copies it under ``basename(dependency)``).
    return pathlib.Path(os.path.abspath(dependency)).name


def validate_source(
    entry_point: str, source_dir: str | None = None, dependencies: Sequence[str] = ()
) -> None:
    """Check the code arguments of an estimator or model before anything is created.

    Raises ``RLConfigError`` when ``source_dir`` is not a directory, when the entry point is not a
    file (inside ``source_dir`` when one is given, where it must be a relative path: SageMaker runs
    it from the root of the extracted ``source_dir``), when a dependency does not exist, or when
    two top-level archive entries would share a name. An ``s3://`` ``source_dir`` is used as is,
    so neither it nor the entry point is checked locally.
    """
    top_level: dict[str, str] = {}
    if source_dir is not None and not _is_s3(source_dir):
        if not os.path.isdir(source_dir):
            raise RLConfigError(
                f'Source directory "{source_dir}" does not exist or is not a directory. '
                "Pass the local folder that holds the entry point, or the s3:// URI of a "
                "sourcedir.tar.gz."
            )
        entry = pathlib.PurePath(entry_point)
        normalised = pathlib.PurePath(os.path.normpath(entry_point))
        if entry.is_absolute() or (normalised.parts and normalised.parts[0] == ".."):
            raise RLConfigError(
                f'Entry point "{entry_point}" is not a relative path inside source_dir '
                f'"{source_dir}". SageMaker runs the entry point from the root of source_dir: '
                'pass its path relative to source_dir (e.g. "train.py" or "agents/train.py").'
            )
        if not os.path.isfile(os.path.join(source_dir, entry_point)):
            # The SDK's message (sagemaker.fw_utils.validate_source_dir), then the fix.
            raise RLConfigError(
                f'No file named "{entry_point}" was found in directory "{source_dir}". '
                "Pass entry_point relative to source_dir."
            )
        with os.scandir(source_dir) as children:
            for child in children:
                if not _is_excluded(child.name):
                    top_level[child.name] = f'source_dir "{source_dir}"'
    elif source_dir is None and not os.path.isfile(entry_point):
        raise RLConfigError(
            f'Entry point "{entry_point}" does not exist or is not a file. Pass the path of the '
            "training script, or a source_dir holding it and entry_point relative to it."
        )
    for dependency in dependencies:
        if not (os.path.isdir(dependency) or os.path.isfile(dependency)):
            raise RLConfigError(
                f'Dependency "{dependency}" does not exist or is not a file or directory. Each '
                "dependency must be a local file or directory; it is copied to the root of the "
                "code archive under its own name."
            )
        name = _dependency_name(dependency)
        if name in top_level:
            raise RLConfigError(
                f'Dependency "{dependency}" would be stored as "{name}", which {top_level[name]} '
                "already has at the root of the code archive. Rename one of them."
            )
        top_level[name] = f'dependency "{dependency}"'


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def build_sourcedir(
    entry_point: str,
    source_dir: str | None,
    dependencies: Sequence[str],
    dest: pathlib.Path,
) -> SourceArchive:
    """Write ``dest/sourcedir.tar.gz`` in SageMaker's layout and return it with its sha256.

    ``source_dir``'s contents go to the archive root, each dependency to a top-level entry named
    by its basename; without ``source_dir`` only the entry point file is archived. Raises
    ``RLConfigError`` for an ``s3://`` ``source_dir`` (it is used as is, never repackaged), for
    anything ``validate_source`` refuses, and for a symlink that leaves its tree or dangles.
    """
    if source_dir is not None and _is_s3(source_dir):
        raise RLConfigError(
            f'source_dir "{source_dir}" is an S3 URI: SageMaker uses it as is, so there is '
            "nothing to package. Use the URI directly, or pass a local source_dir."
        )
    validate_source(entry_point, source_dir, dependencies)
    entries: list[_Entry] = []
    if source_dir is not None:
        _collect_tree(pathlib.Path(source_dir), "", exclude=True, entries=entries)
    else:
        entries.append(
            _Entry(
                arcname=pathlib.Path(os.path.abspath(entry_point)).name,
                kind="file",
                path=pathlib.Path(entry_point),
            )
        )
    for dependency in dependencies:
        name = _dependency_name(dependency)
        if os.path.isdir(dependency):
            entries.append(_Entry(arcname=name, kind="dir"))
            _collect_tree(pathlib.Path(dependency), name, exclude=True, entries=entries)
        else:
            entries.append(_Entry(arcname=name, kind="file", path=pathlib.Path(dependency)))
    archive = _write_archive(entries, dest / SOURCEDIR_ARCHIVE_NAME)
    log.info(
        "Packaged entry point %s (source_dir %s, %s dependencies) into %s: %s bytes, sha256 %s",
        entry_point,
        source_dir,
        len(dependencies),
        archive.path,
        archive.size,
        archive.sha256,
    )
    return archive


def pack_directory(src: pathlib.Path, dest_file: pathlib.Path) -> SourceArchive:
    """Write a deterministic tar.gz of ``src``'s contents (at the archive root) to ``dest_file``.

    Used for ``model.tar.gz`` and ``output.tar.gz``: nothing is left out (they are the job's
    artifacts), but a symlink must stay inside ``src``. Written to a temporary name in the same
    directory and renamed, so a reader never sees a half-written archive.
    """
    if not src.is_dir():
        raise RLConfigError(
            f'Cannot archive "{src}": it does not exist or is not a directory. '
            "Pass the directory whose contents should be archived."
        )
    entries: list[_Entry] = []
    _collect_tree(src, "", exclude=False, entries=entries)
    archive = _write_archive(entries, dest_file)
    log.info("Packed %s into %s: %s bytes, sha256 %s", src, dest_file, archive.size, archive.sha256)
    return archive


# Where SageMaker's framework serving images (and SDK v2's repacking) look for a model's code:
# ``code/`` inside model.tar.gz, i.e. /opt/ml/model/code in the container.
MODEL_CODE_DIR = "code"


def repack_model(
    original: pathlib.Path, code: pathlib.Path, dest_file: pathlib.Path
) -> SourceArchive:
    """``model.tar.gz`` = ``original``'s contents with ``code`` as ``code/`` (SDK v2 rule).

    ``code`` is a directory or a ``sourcedir.tar.gz``; a ``code/`` already in the model is
    replaced. Both archives go through ``safe_extract``; the result is deterministic.
    """
    with tempfile.TemporaryDirectory(prefix="rl-provider-repack-") as tmp:
        model = pathlib.Path(tmp) / "model"
        safe_extract(original, model)
        target = model / MODEL_CODE_DIR
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if code.is_dir():
            shutil.copytree(code, target, symlinks=True)
        else:
            safe_extract(code, target)
        return pack_directory(model, dest_file)


def _collect_tree(root: pathlib.Path, prefix: str, *, exclude: bool, entries: list[_Entry]) -> None:
    """Append the members for ``root``'s contents, named under ``prefix`` ("" = archive root).

    The walk never follows a symlink: a link is checked against ``root`` and stored as a link.
    """
    real_root = pathlib.Path(os.path.realpath(root))

    def visit(directory: pathlib.Path, shown: pathlib.Path, arc_dir: str) -> None:
        with os.scandir(directory) as scan:
            children = sorted(scan, key=lambda child: child.name)
        for child in children:
            if exclude and _is_excluded(child.name):
                continue
            path = directory / child.name
            arcname = f"{arc_dir}/{child.name}" if arc_dir else child.name
            mode = child.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                linkname = _checked_link(path, shown / child.name, real_root, root, exclude)
                entries.append(_Entry(arcname=arcname, kind="symlink", linkname=linkname))
            elif stat.S_ISDIR(mode):
                entries.append(_Entry(arcname=arcname, kind="dir"))
                visit(path, shown / child.name, arcname)
            elif stat.S_ISREG(mode):
                entries.append(_Entry(arcname=arcname, kind="file", path=path))
            else:
                raise RLConfigError(
                    f'"{shown / child.name}" is not a regular file, directory or symlink '
                    "(a device, FIFO or socket cannot be archived). Remove it from the tree."
                )

    visit(real_root, root, prefix)


def _checked_link(
    link: pathlib.Path,
    shown: pathlib.Path,
    real_root: pathlib.Path,
    root: pathlib.Path,
    exclude: bool,
) -> str:
    """The relative target to store for ``link``, or RLConfigError when it leaves ``root``."""
    target = os.readlink(link)
    resolved = pathlib.Path(os.path.realpath(link))
    if not resolved.exists():
        raise RLConfigError(
            f'Symlink "{shown}" points to "{target}", which does not exist (dangling or looping '
            "link). Remove the link or create its target inside the tree."
        )
    if not resolved.is_relative_to(real_root):
        raise RLConfigError(
            f'Symlink "{shown}" points to "{target}", outside "{root}". The archive must be '
            "self-contained: copy the target into the tree or pass its folder in dependencies."
        )
    if exclude and any(_is_excluded(part) for part in resolved.relative_to(real_root).parts):
        raise RLConfigError(
            f'Symlink "{shown}" points to "{target}", which is left out of the archive '
            "(.git, __pycache__ and *.pyc are not packaged). Point it at packaged code."
        )
    # ``link.parent`` is a real directory (the walk never follows links), so this relative path
    # resolves to the same file wherever the archive is extracted.
    return os.path.relpath(resolved, link.parent)


def _write_archive(entries: Sequence[_Entry], dest_file: pathlib.Path) -> SourceArchive:
    """Write ``entries`` as a deterministic tar.gz via a temporary file and ``os.replace``."""
    ordered = sorted(entries, key=lambda entry: entry.arcname.split("/"))
    dest_file.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{dest_file.name}.", suffix=".tmp", dir=dest_file.parent
    )
    temp = pathlib.Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as raw:
            # filename="" keeps the temporary name out of the gzip header; mtime=0 fixes the date.
            with (
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL
                ) as compressed,
                tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in ordered:
                    _add_entry(tar, entry)
            raw.flush()
            os.fsync(raw.fileno())
        # mkstemp creates 0o600; an archive is meant to be read by other processes.
        os.chmod(temp, _FILE_MODE)
        digest = sha256_file(temp)
        size = temp.stat().st_size
        os.replace(temp, dest_file)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return SourceArchive(path=dest_file, sha256=digest, size=size)


def _tar_info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_entry(tar: tarfile.TarFile, entry: _Entry) -> None:
    if entry.kind == "dir":
        tar.addfile(_tar_info(entry.arcname, tarfile.DIRTYPE, _DIR_MODE))
    elif entry.kind == "symlink":
        info = _tar_info(entry.arcname, tarfile.SYMTYPE, _LINK_MODE)
        info.linkname = entry.linkname
        tar.addfile(info)
    else:
        if entry.path is None:
            raise TypeError(f"file entry {entry.arcname} has no path")
        with open(entry.path, "rb") as source:
            status = os.fstat(source.fileno())
            executable = status.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            info = _tar_info(
                entry.arcname, tarfile.REGTYPE, _EXEC_FILE_MODE if executable else _FILE_MODE
            )
            info.size = status.st_size
            tar.addfile(info, source)
