"""Generated code from the protos, reproducible by one command (``./mesh gen``).

Writes gen/python (messages, .pyi stubs, gRPC stubs, through buf.gen.yaml),
gen/descriptor.binpb (the descriptor set Envoy transcodes with, imports
included so google.rpc error details can be rendered as JSON) and
gen/openapi.json (the REST API it transcodes, see gateway/openapi.py).
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import tempfile
from pathlib import Path

from local_stack.paths import DESCRIPTOR_SET, GEN_PYTHON, ROOT, VENV_BIN

OPENAPI = ROOT / "gen" / "openapi.json"


def _buf(*args: str, cwd: Path = ROOT) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(VENV_BIN / "buf"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"buf {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def generate(out_root: Path = ROOT) -> list[Path]:
    """Generate Python code and the descriptor set under ``out_root``/gen."""
    python_out = out_root / "gen" / "python"
    descriptor = out_root / "gen" / "descriptor.binpb"
    _buf("generate", "--output", str(out_root))
    _buf("build", "--as-file-descriptor-set", "-o", str(descriptor))
    # Imported only now, so the access rules come from freshly generated code.
    from gateway import openapi

    openapi_out = out_root / "gen" / "openapi.json"
    openapi_out.write_text(openapi.render(openapi.openapi_document(descriptor.read_bytes())))
    return [python_out, descriptor, openapi_out]


def stale_files() -> list[str]:
    """Generated files that differ from what ``./mesh gen`` would write now."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh_root = Path(scratch)
        generate(fresh_root)
        fresh_python = fresh_root / "gen" / "python"
        stale = _diff_trees(fresh_python, GEN_PYTHON, "gen/python")
        if not DESCRIPTOR_SET.exists() or DESCRIPTOR_SET.read_bytes() != (
            fresh_root / "gen" / "descriptor.binpb"
        ).read_bytes():
            stale.append("gen/descriptor.binpb")
        if not OPENAPI.exists() or OPENAPI.read_text() != (fresh_root / "gen" / "openapi.json").read_text():
            stale.append("gen/openapi.json")
        return stale


def _diff_trees(fresh: Path, committed: Path, label: str) -> list[str]:
    fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    committed_files = {
        p.relative_to(committed)
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    } if committed.exists() else set()
    differing = [
        str(Path(label) / rel)
        for rel in sorted(fresh_files | committed_files)
        if rel not in fresh_files
        or rel not in committed_files
        or not filecmp.cmp(fresh / rel, committed / rel, shallow=False)
    ]
    return differing

