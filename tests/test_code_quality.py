"""The project's own code is lint-clean (ruff) and type-checks (mypy)."""

from __future__ import annotations

import subprocess

from local_stack.paths import ROOT, VENV_BIN


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "mypy"), "."], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
