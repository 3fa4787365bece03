from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rl_provider import RLEstimator
from rl_provider.backends.local import LocalBackend


@pytest.fixture
def backend(tmp_path):
    return LocalBackend(tmp_path / "home", stop_grace_seconds=5.0)


@pytest.fixture
def write_script(tmp_path):
    """Write an entry point into its own source dir and return that dir."""

    def write(body: str, name: str = "train.py", extra: dict[str, str] | None = None) -> Path:
        src = tmp_path / f"src-{len(list(tmp_path.glob('src-*')))}"
        src.mkdir()
        (src / name).write_text(textwrap.dedent(body))
        for rel, text in (extra or {}).items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(textwrap.dedent(text))
        return src

    return write


@pytest.fixture
def estimator_for(backend):
    def make(src: Path, **kwargs) -> RLEstimator:
        defaults = dict(
            entry_point="train.py",
            source_dir=str(src),
            toolkit="ray",
            toolkit_version="2.60.0",
            framework="pytorch",
            backend=backend,
        )
        return RLEstimator(**{**defaults, **kwargs})

    return make
