"""File modes and disk-full handling for everything the local backend writes (docs/RELIABILITY.md).

The home and all state under it (the database, logs, job and endpoint directories) are private
to the owner whatever the caller's umask: directories 0700, files 0600. Published artifacts
(``model.tar.gz``, ``output.tar.gz``, ``sourcedir.tar.gz`` at a ``file://`` location) are 0644,
like an object in a bucket you own: who may read them is the location's business (the default
output path is under the 0700 home).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PUBLISHED_MODE = 0o644
# The umask of every process the backend starts (runner, model server, and what they start):
# whatever they create is private unless a mode is set explicitly.
PRIVATE_UMASK = 0o077
# Below this many free bytes an I/O error on the home's filesystem is taken as "disk full"
# (SQLite reports some ENOSPC cases as a generic disk I/O error).
_NEARLY_FULL_BYTES = 1 << 20


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a 0700 directory; an existing one is made 0700 too."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):  # mkdir(parents=True) gives parents the umask's mode
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        os.chmod(directory, PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def make_private(tree: Path) -> None:
    """An unpacked archive's tree as private state: directories 0700, files 0600 (0700 when
    executable). Archives carry their own modes (0644, 0755), which the umask does not touch."""
    for root, _dirs, names in os.walk(tree):
        os.chmod(root, PRIVATE_DIR_MODE)
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & 0o100
            os.chmod(path, PRIVATE_DIR_MODE if executable else PRIVATE_FILE_MODE)


def private_file(path: Path) -> Path:
    """Create ``path`` if missing, and make it 0600 (before anything secret is written to it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return path


def is_out_of_space(err: BaseException, where: Path | None = None) -> bool:
    """Whether ``err`` (or what caused it) means the disk (or a quota) is full."""
    if err.__cause__ is not None and is_out_of_space(err.__cause__, where):
        return True
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, sqlite3.Error):
        code = getattr(err, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR and where is not None:
            return free_bytes(where) < _NEARLY_FULL_BYTES
    return False


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (its nearest existing ancestor)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return 0


def out_of_space_message(where: Path | str, err: BaseException) -> str:
    """The words every out-of-space FailureReason and error uses."""
    return (
        f"out of space: no space left on the device holding {where} ({err}); free space there "
        "(or point RL_PROVIDER_HOME / the output path at a larger disk) and start the job again"
    )
