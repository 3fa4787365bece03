"""Safe extraction of tar archives: every member is checked before anything is written.

An archive may come from anywhere (a ``model.tar.gz`` or ``sourcedir.tar.gz`` in S3, a user's
path), so a member that would land outside the extraction directory is refused, whether it gets
there by an absolute path, by ``..``, or through a symlink the archive itself creates earlier.
Standard library only: the Ray launcher ships this module with each job.
"""

from __future__ import annotations

import os
import pathlib
import tarfile
from collections.abc import Sequence

from rl_provider.exceptions import RLConfigError

__all__ = ["safe_extract"]

# Linux's own limit on symlink hops (MAXSYMLINKS), used when resolving links inside an archive.
_MAX_LINK_HOPS = 40


def safe_extract(archive: pathlib.Path, target: pathlib.Path) -> None:
    """Extract a tar or tar.gz into ``target``, refusing anything that could escape it.

    Every member is checked before anything is written, so a refused archive leaves nothing
    behind: absolute paths, paths that climb out of ``target`` (also through symlinks in the
    archive), symlinks and hard links whose target leaves ``target``, and devices or FIFOs raise
    ``RLConfigError`` naming the member. Python's ``data`` extraction filter (PEP 706) then runs
    as a second line of defence when this interpreter has it.
    """
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            _check_members(archive, members)
            target.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
            else:  # pragma: no cover - interpreters without PEP 706 (before 3.11.4)
                tar.extractall(target)
    except tarfile.FilterError as exc:  # pragma: no cover - the pre-check refuses these first
        raise RLConfigError(f'Archive "{archive}" has an unsafe member: {exc}') from exc
    except tarfile.TarError as exc:
        raise RLConfigError(
            f'"{archive}" is not a readable tar archive ({exc}). Pass a tar or tar.gz file.'
        ) from exc


def _check_members(archive: pathlib.Path, members: Sequence[tarfile.TarInfo]) -> None:
    # Members are checked in archive order, as tarfile extracts them, against the symlinks
    # extracted before them (keyed by their resolved location), so a path that climbs out
    # through an earlier link (``d -> .`` then ``d/../x``) is caught as well as a plain ``../x``.
    links: dict[tuple[str, ...], str] = {}
    for member in members:
        name = member.name
        if os.path.isabs(name):
            raise _unsafe(archive, name, "has an absolute path")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise _unsafe(archive, name, "is a device, FIFO or other special file")
        parts = _parts(name)
        if not parts and member.isdir():
            continue  # "." or "./": the extraction directory itself (`tar -C model -czf x .`)
        if not parts or parts[-1] == "..":
            raise _unsafe(archive, name, "does not name an entry inside the extraction directory")
        # A member is created at its parent's resolved location.
        parent = _resolve(parts[:-1], links)
        if parent is None:
            raise _unsafe(archive, name, "lies outside the extraction directory")
        location = (*parent, parts[-1])
        if member.issym():
            # A symlink's target is relative to the directory holding it.
            if (
                os.path.isabs(member.linkname)
                or _resolve((*parent, *_parts(member.linkname)), links) is None
            ):
                raise _unsafe(
                    archive, name, f'links to "{member.linkname}", outside the extraction directory'
                )
            links[location] = member.linkname
            continue
        if _resolve(location, links) is None:
            raise _unsafe(archive, name, "lies outside the extraction directory")
        # A hard link's target is a path from the archive root (tarfile joins it to target).
        if member.islnk() and (
            os.path.isabs(member.linkname) or _resolve(_parts(member.linkname), links) is None
        ):
            raise _unsafe(
                archive, name, f'links to "{member.linkname}", outside the extraction directory'
            )


def _parts(name: str) -> tuple[str, ...]:
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _resolve(parts: Sequence[str], links: dict[tuple[str, ...], str]) -> tuple[str, ...] | None:
    """Resolve an archive path through the archive's own symlinks; None when it escapes."""
    pending = list(parts)
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        linkname = links.get(tuple(resolved))
        if linkname is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS or os.path.isabs(linkname):
                return None
            resolved.pop()
            pending = [*_parts(linkname), *pending]
    return tuple(resolved)


def _unsafe(archive: pathlib.Path, member: str, why: str) -> RLConfigError:
    return RLConfigError(
        f'Refusing to extract "{archive}": member "{member}" {why}. Only archives whose members '
        "stay inside the extraction directory can be extracted; rebuild the archive without it."
    )
