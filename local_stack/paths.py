"""Where things are in the checkout."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".state"
GEN_PYTHON = ROOT / "gen" / "python"
DESCRIPTOR_SET = ROOT / "gen" / "descriptor.binpb"
PROTOS = ROOT / "protos"
VENV_BIN = Path(sys.executable).parent
