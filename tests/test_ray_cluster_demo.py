"""tools/ray_cluster_demo.py: its entry point parses arguments, and README's command is valid.

The demo itself (a two-node cluster and a full DAG run, ~3 min) is run by hand; see README's
"Running on a Ray cluster".
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "ray_cluster_demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("ray_cluster_demo", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_runs_as_a_user_runs_it():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--iterations", "--threshold", "--keep-endpoint"):
        assert option in result.stdout


def test_readme_command_parses():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\.venv/bin/python tools/ray_cluster_demo\.py(.*)$", readme, re.M)
    assert len(commands) == 1, commands
    args = load_demo().parse_args(shlex.split(commands[0]))
    assert args.iterations == 10
    assert args.keep_endpoint is False


def test_bad_argument_is_refused():
    with pytest.raises(SystemExit) as exit_info:
        load_demo().parse_args(["--iterations", "ten"])
    assert exit_info.value.code == 2
