"""The code base passes ruff, as configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


FORMATTED = ["mgs_teach", "tests", "scripts", "_ext"]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", *FORMATTED]])
def test_ruff(args):
    done = subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
