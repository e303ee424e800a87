"""Which settings class each container of the mesh loads, for checking what
compose and Kubernetes give it."""

from __future__ import annotations

from pathlib import Path

from local_stack import process_env

ROOT = Path(__file__).resolve().parents[2]

# Settings a container reads that .env.example does not list yet, with who reads
# them. Each must still be missing there (document it, then delete it here) and be
# declared with a description by that process's settings class.
NOT_YET_IN_ENV_EXAMPLE: dict[str, str] = {}


def settings_classes() -> dict[str, type]:
    """The settings each of our containers loads at start (the local stack's processes load the same)."""
    return process_env.settings_classes()
