"""The README's example runs as written and prints what it says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_example_prints_its_comments(tmp_path):
    (block,) = python_blocks()
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(README.parent)}
    out = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == expected
