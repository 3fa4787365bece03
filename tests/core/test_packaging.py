"""Source and artifact archives: layout, determinism, exclusions, symlinks, safe extraction."""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

from rl_provider.core.packaging import (
    SourceArchive,
    build_sourcedir,
    pack_directory,
    safe_extract,
    sha256_file,
    validate_source,
)
from rl_provider.exceptions import RLConfigError

# ---------------------------------------------------------------------------------- helpers


def write(path: pathlib.Path, text: str = "x", mode: int | None = None) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


def names(archive: pathlib.Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def members(archive: pathlib.Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def make_source(root: pathlib.Path) -> pathlib.Path:
    """A small source tree: entry point, a package, nested folders and an executable script."""
    write(root / "train.py", "print('train')\n")
    write(root / "agents" / "__init__.py", "")
    write(root / "agents" / "ppo" / "policy.py", "POLICY = 1\n")
    write(root / "bin" / "run.sh", "#!/bin/sh\n", mode=0o700)
    write(root / "requirements.txt", "gymnasium\n")
    return root


def crafted_tar(path: pathlib.Path, *infos: tuple[tarfile.TarInfo, bytes | None]) -> pathlib.Path:
    """A tar.gz holding exactly the members given (as an attacker would build it)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in infos:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def file_info(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"payload"


def link_info(
    name: str, target: str, kind: bytes = tarfile.SYMTYPE
) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def leftovers(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------------- layout


def test_source_dir_contents_at_root_nested_dirs_preserved(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    archive = build_sourcedir("train.py", str(src), (), tmp_path / "out")

    assert archive.path == tmp_path / "out" / "sourcedir.tar.gz"
    assert names(archive.path) == [
        "agents",
        "agents/__init__.py",
        "agents/ppo",
        "agents/ppo/policy.py",
        "bin",
        "bin/run.sh",
        "requirements.txt",
        "train.py",
    ]


def test_dependencies_are_top_level_entries(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    write(tmp_path / "libs" / "common" / "utils" / "io.py")
    single = write(tmp_path / "extra" / "helpers.py")

    archive = build_sourcedir(
        "train.py", str(src), [str(tmp_path / "libs" / "common") + "/", str(single)], tmp_path / "o"
    )

    found = names(archive.path)
    assert {"common", "common/utils", "common/utils/io.py", "helpers.py", "train.py"} <= set(found)
    assert "libs" not in found


def test_without_source_dir_only_entry_point(tmp_path: pathlib.Path) -> None:
    make_source(tmp_path / "src")
    write(tmp_path / "lib" / "mod.py")

    archive = build_sourcedir(
        str(tmp_path / "src" / "train.py"), None, [str(tmp_path / "lib")], tmp_path / "out"
    )

    assert names(archive.path) == ["lib", "lib/mod.py", "train.py"]


def test_archive_metadata_is_normalised(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    write(src / "secret.cfg", "k", mode=0o600)
    archive = build_sourcedir("train.py", str(src), (), tmp_path / "out")

    found = members(archive.path)
    assert {m.mtime for m in found.values()} == {0}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in found.values()} == {(0, 0, "", "")}
    assert found["bin/run.sh"].mode == 0o755
    assert found["secret.cfg"].mode == 0o644
    assert found["agents"].mode == 0o755
    header = archive.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip MTIME
    assert not header[3] & 0x08  # no FNAME flag
    assert archive.sha256 == sha256_file(archive.path)
    assert archive.size == archive.path.stat().st_size


def test_round_trip_through_safe_extract(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    archive = build_sourcedir("train.py", str(src), (), tmp_path / "out")

    safe_extract(archive.path, tmp_path / "code")

    for relative in ("train.py", "agents/ppo/policy.py", "bin/run.sh", "requirements.txt"):
        assert (tmp_path / "code" / relative).read_bytes() == (src / relative).read_bytes()
    assert os.access(tmp_path / "code" / "bin" / "run.sh", os.X_OK)


# ------------------------------------------------------------------------------ determinism


def _copy_reversed(src: pathlib.Path, dst: pathlib.Path, moment: int) -> None:
    """Copy ``src`` creating entries in reverse order, with other mtimes and permissions."""
    paths = sorted(src.rglob("*"), reverse=True)
    for path in paths:
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            # Same exec class, different bits: still normalised to the same mode.
            target.chmod(0o711 if os.access(path, os.X_OK) else 0o600)
    for path in [dst, *dst.rglob("*")]:
        os.utime(path, (moment, moment))
        if os.geteuid() == 0:
            os.chown(path, 1234, 5678)


def test_same_tree_same_sha256(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    first = build_sourcedir("train.py", str(src), (), tmp_path / "a")
    second = build_sourcedir("train.py", str(src), (), tmp_path / "b")
    copy = tmp_path / "copy"
    _copy_reversed(src, copy, 1_000_000)
    third = build_sourcedir("train.py", str(copy), (), tmp_path / "c")

    assert first.sha256 == second.sha256 == third.sha256
    assert first.path.read_bytes() == third.path.read_bytes()


def test_one_byte_changes_sha256(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    before = build_sourcedir("train.py", str(src), (), tmp_path / "a")
    write(src / "agents" / "ppo" / "policy.py", "POLICY = 2\n")
    after = build_sourcedir("train.py", str(src), (), tmp_path / "b")

    assert before.sha256 != after.sha256


def test_rebuild_replaces_archive_in_place(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    build_sourcedir("train.py", str(src), (), tmp_path / "out")
    write(src / "train.py", "print('v2')\n")
    archive = build_sourcedir("train.py", str(src), (), tmp_path / "out")

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sourcedir.tar.gz"]
    assert archive.sha256 == sha256_file(tmp_path / "out" / "sourcedir.tar.gz")


# ------------------------------------------------------------------------------- exclusions


def test_git_pycache_and_pyc_left_out(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    write(src / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(src / "agents" / "__pycache__" / "policy.cpython-311.pyc", "bytecode")
    write(src / "stray.pyc", "bytecode")
    dep = write(tmp_path / "dep" / "mod.py").parent
    write(dep / "__pycache__" / "mod.cpython-311.pyc")
    write(dep / "sub" / ".git" / "config")

    archive = build_sourcedir("train.py", str(src), [str(dep)], tmp_path / "out")

    found = names(archive.path)
    assert not [n for n in found if ".git" in n or "__pycache__" in n or n.endswith(".pyc")]
    assert "dep/mod.py" in found
    assert "dep/sub" in found


# --------------------------------------------------------------------------------- symlinks


def test_symlink_inside_tree_kept_as_relative_link(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    (src / "agents" / "current.py").symlink_to(src / "agents" / "ppo" / "policy.py")  # absolute
    (src / "latest").symlink_to("agents/ppo")

    archive = build_sourcedir("train.py", str(src), (), tmp_path / "out")

    found = members(archive.path)
    assert found["agents/current.py"].issym()
    assert found["agents/current.py"].linkname == "ppo/policy.py"
    assert found["latest"].linkname == "agents/ppo"
    assert "latest/policy.py" not in found  # the link is stored, not followed
    safe_extract(archive.path, tmp_path / "code")
    assert (tmp_path / "code" / "agents" / "current.py").read_text() == "POLICY = 1\n"
    assert (tmp_path / "code" / "latest" / "policy.py").read_text() == "POLICY = 1\n"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("/etc/hostname", "outside", id="absolute-outside"),
        pytest.param("../outside.py", "outside", id="relative-outside"),
        pytest.param("missing.py", "does not exist", id="dangling"),
    ],
)
def test_symlink_leaving_tree_refused(tmp_path: pathlib.Path, target: str, message: str) -> None:
    write(tmp_path / "outside.py")
    src = make_source(tmp_path / "src")
    (src / "agents" / "bad.py").symlink_to(target)
    dest = tmp_path / "out"

    with pytest.raises(RLConfigError, match=message) as caught:
        build_sourcedir("train.py", str(src), (), dest)

    assert "bad.py" in str(caught.value)
    assert target in str(caught.value)
    assert not dest.exists()  # refused before anything was created


def test_failed_build_leaves_no_temp_file(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    dest = tmp_path / "out"
    build_sourcedir("train.py", str(src), (), dest)
    assert leftovers(dest) == []
    good = sha256_file(dest / "sourcedir.tar.gz")
    (src / "escape").symlink_to(tmp_path)

    with pytest.raises(RLConfigError, match="escape"):
        build_sourcedir("train.py", str(src), (), dest)

    assert sorted(p.name for p in dest.iterdir()) == ["sourcedir.tar.gz"]
    assert sha256_file(dest / "sourcedir.tar.gz") == good  # the previous archive is untouched


def test_failure_after_writing_leaves_no_temp_file(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    dest = tmp_path / "out"
    # The final rename fails (a directory is in the way) after the whole archive was written.
    write(dest / "sourcedir.tar.gz" / "occupied")

    with pytest.raises(OSError):  # noqa: PT011 - IsADirectoryError or OSError by platform
        build_sourcedir("train.py", str(src), (), dest)

    assert sorted(p.name for p in dest.iterdir()) == ["sourcedir.tar.gz"]
    assert leftovers(dest) == []


# ------------------------------------------------------------------------ validate_source


@pytest.mark.parametrize(
    ("entry_point", "source_dir", "dependencies", "message"),
    [
        pytest.param(
            "nope.py",
            "{src}",
            (),
            'No file named "nope.py" was found in directory "{src}".',
            id="entry-missing-in-source-dir",
        ),
        pytest.param(
            "nope.py", None, (), 'Entry point "nope.py" does not exist', id="entry-missing"
        ),
        pytest.param("agents", None, (), 'Entry point "agents" does not exist', id="entry-dir"),
        pytest.param(
            "train.py",
            "{tmp}/nowhere",
            (),
            'Source directory "{tmp}/nowhere" does not exist',
            id="source-dir-missing",
        ),
        pytest.param(
            "train.py",
            "{src}/train.py",
            (),
            'Source directory "{src}/train.py"',
            id="source-dir-is-file",
        ),
        pytest.param(
            "{src}/train.py",
            "{src}",
            (),
            "is not a relative path inside source_dir",
            id="entry-absolute",
        ),
        pytest.param(
            "../src/train.py",
            "{src}",
            (),
            "is not a relative path inside source_dir",
            id="entry-escapes",
        ),
        pytest.param(
            "train.py",
            "{src}",
            ["{tmp}/nolib"],
            'Dependency "{tmp}/nolib" does not exist',
            id="dependency-missing",
        ),
        pytest.param(
            "train.py",
            "{src}",
            ["{tmp}/lib/agents"],
            'would be stored as "agents"',
            id="dependency-clashes-with-source",
        ),
        pytest.param(
            "train.py",
            "{src}",
            ["{tmp}/lib/agents", "{tmp}/other/agents"],
            'would be stored as "agents"',
            id="dependencies-clash",
        ),
    ],
)
def test_validate_source_errors(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    entry_point: str,
    source_dir: str | None,
    dependencies: tuple[str, ...],
    message: str,
) -> None:
    src = make_source(tmp_path / "src")
    write(tmp_path / "lib" / "agents" / "x.py")
    write(tmp_path / "other" / "agents" / "y.py")
    monkeypatch.chdir(src)  # relative entry points without source_dir resolve from here

    def fill(text: str) -> str:
        return text.format(src=src, tmp=tmp_path)

    with pytest.raises(RLConfigError) as caught:
        validate_source(
            fill(entry_point),
            None if source_dir is None else fill(source_dir),
            [fill(d) for d in dependencies],
        )

    assert fill(message) in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("entry_point", "source_dir", "dependencies"),
    [
        pytest.param("train.py", "{src}", (), id="root"),
        pytest.param("agents/ppo/policy.py", "{src}", (), id="nested"),
        pytest.param("agents/../train.py", "{src}", (), id="dotdot-inside"),
        pytest.param("{src}/train.py", None, ["{tmp}/lib/agents"], id="no-source-dir"),
        pytest.param("anything.py", "s3://bucket/code/sourcedir.tar.gz", (), id="s3-unchecked"),
        pytest.param("x.py", "S3://Bucket/code.tar.gz", ["{src}/bin"], id="s3-upper-case"),
    ],
)
def test_validate_source_accepts(
    tmp_path: pathlib.Path, entry_point: str, source_dir: str | None, dependencies: tuple[str, ...]
) -> None:
    src = make_source(tmp_path / "src")
    write(tmp_path / "lib" / "agents" / "x.py")

    def fill(text: str) -> str:
        return text.format(src=src, tmp=tmp_path)

    validate_source(
        fill(entry_point),
        None if source_dir is None else fill(source_dir),
        [fill(d) for d in dependencies],
    )


def test_build_refuses_s3_source_dir(tmp_path: pathlib.Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(RLConfigError, match=r"s3://bucket/src.*uses it as is"):
        build_sourcedir("train.py", "s3://bucket/src", (), dest)
    assert not dest.exists()


def test_build_validates_first(tmp_path: pathlib.Path) -> None:
    src = make_source(tmp_path / "src")
    dest = tmp_path / "out"
    with pytest.raises(RLConfigError, match="No file named"):
        build_sourcedir("missing.py", str(src), (), dest)
    assert not dest.exists()


# ------------------------------------------------------------------------------ safe_extract


@pytest.mark.parametrize(
    ("infos", "member"),
    [
        pytest.param([file_info("/tmp/evil")], "/tmp/evil", id="absolute"),
        pytest.param([file_info("../evil")], "../evil", id="dotdot"),
        pytest.param([file_info("ok/../../evil")], "ok/../../evil", id="dotdot-nested"),
        pytest.param([link_info("etc", "/etc")], "etc", id="symlink-absolute"),
        pytest.param([link_info("up", "../../x")], "up", id="symlink-relative-outside"),
        pytest.param(
            [link_info("hard", "/etc/passwd", tarfile.LNKTYPE)], "hard", id="hardlink-absolute"
        ),
        pytest.param(
            [link_info("hard", "../outside.txt", tarfile.LNKTYPE)], "hard", id="hardlink-outside"
        ),
        pytest.param(
            [link_info("here", "."), link_info("here/up", "..")], "here/up", id="symlink-chain"
        ),
        pytest.param(
            [link_info("dir", "."), file_info("dir/../evil")], "dir/../evil", id="through-link"
        ),
        pytest.param(
            [link_info("x/../b", "."), file_info("b/../evil")], "b/../evil", id="dotdot-link-name"
        ),
        pytest.param([file_info("ok/..")], "ok/..", id="name-ends-in-dotdot"),
        pytest.param(
            [link_info("fifo", "", tarfile.FIFOTYPE)],
            "fifo",
            id="fifo",
        ),
        pytest.param(
            [link_info("dev", "", tarfile.CHRTYPE)],
            "dev",
            id="char-device",
        ),
    ],
)
def test_safe_extract_refuses_and_extracts_nothing(
    tmp_path: pathlib.Path, infos: list[tuple[tarfile.TarInfo, bytes | None]], member: str
) -> None:
    write(tmp_path / "outside.txt", "secret")
    # A harmless member first: the refusal must come before it is written.
    archive = crafted_tar(tmp_path / "evil.tar.gz", file_info("innocent.txt"), *infos)
    target = tmp_path / "deep" / "target"

    with pytest.raises(RLConfigError) as caught:
        safe_extract(archive, target)

    assert f'"{member}"' in str(caught.value)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "outside.txt"]


def test_safe_extract_into_existing_dir_leaves_it_empty(tmp_path: pathlib.Path) -> None:
    archive = crafted_tar(tmp_path / "evil.tar", file_info("ok.txt"), file_info("../evil"))
    target = tmp_path / "target"
    target.mkdir()

    with pytest.raises(RLConfigError, match="outside the extraction directory"):
        safe_extract(archive, target)

    assert list(target.iterdir()) == []


def test_safe_extract_plain_tar_and_internal_links(tmp_path: pathlib.Path) -> None:
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        for info, data in [
            (tarfile.TarInfo("pkg"), None),
            file_info("pkg/a.txt"),
            link_info("pkg/b.txt", "a.txt"),
            link_info("pkg/c.txt", "pkg/a.txt", tarfile.LNKTYPE),
        ]:
            if info.name == "pkg":
                info.type = tarfile.DIRTYPE
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

    safe_extract(archive, tmp_path / "target")

    for name in ("a.txt", "b.txt", "c.txt"):
        assert (tmp_path / "target" / "pkg" / name).read_bytes() == b"payload"
    assert (tmp_path / "target" / "pkg" / "b.txt").is_symlink()


def test_safe_extract_accepts_a_dot_root_as_tar_c_dir_dot_writes_it(tmp_path: pathlib.Path) -> None:
    """``tar -C model -czf model.tar.gz .`` (how many users pack models) starts with ``./``."""
    source = tmp_path / "model"
    write(source / "policy" / "weights.bin", "w")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "."

    safe_extract(archive, tmp_path / "target")

    assert (tmp_path / "target" / "policy" / "weights.bin").read_text() == "w"


def test_safe_extract_refuses_non_tar(tmp_path: pathlib.Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(gzip.compress(b"not a tar archive at all" * 40))
    with pytest.raises(RLConfigError, match="not a readable tar archive"):
        safe_extract(bogus, tmp_path / "target")
    assert not (tmp_path / "target").exists()


# ---------------------------------------------------------------------------- pack_directory


def test_pack_directory_deterministic_and_atomic(tmp_path: pathlib.Path) -> None:
    model = tmp_path / "model"
    write(model / "policy" / "weights.bin", "w")
    write(model / "__pycache__" / "kept.pyc", "artifacts are not filtered")
    write(model / "params.json", "{}")
    dest = tmp_path / "job" / "output" / "model.tar.gz"

    first = pack_directory(model, dest)
    copy = tmp_path / "copy"
    _copy_reversed(model, copy, 42)
    second = pack_directory(copy, tmp_path / "other.tar.gz")

    assert isinstance(first, SourceArchive)
    assert first.path == dest
    assert first.sha256 == second.sha256 == sha256_file(dest)
    assert names(dest) == [
        "__pycache__",
        "__pycache__/kept.pyc",
        "params.json",
        "policy",
        "policy/weights.bin",
    ]
    assert leftovers(dest.parent) == []


def test_pack_directory_empty_and_refusals(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    archive = pack_directory(empty, tmp_path / "out" / "output.tar.gz")
    assert names(archive.path) == []

    with pytest.raises(RLConfigError, match="not a directory"):
        pack_directory(tmp_path / "missing", tmp_path / "x.tar.gz")

    (empty / "link").symlink_to(tmp_path / "out")
    with pytest.raises(RLConfigError, match="outside"):
        pack_directory(empty, tmp_path / "out" / "output.tar.gz")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["output.tar.gz"]


# ------------------------------------------------------------------ shipped with each Ray job


def test_the_ray_job_package_holds_every_module_the_launcher_imports(
    tmp_path: pathlib.Path,
) -> None:
    # The Ray backend ships packaging (and what it imports) as loose files with each job; a
    # module split off packaging must travel too. An interpreter without site-packages (-S) sees
    # only the stdlib and the package, as a cluster node without rl_provider installed would.
    from rl_provider.backends.ray.submission import job_package

    _name, data = job_package({})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
        "import rl_provider.backends.ray.launcher, rl_provider.core.packaging as p; "
        "print(p.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "rl_provider" / "core" / "packaging.py")
