"""The contract (protos) is linted, formatted, compatible, and its generated
code is what ./mesh gen writes."""

from __future__ import annotations

import subprocess

from local_stack.paths import ROOT, VENV_BIN
from mesh_cli import codegen


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "buf"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_buf_lint_passes() -> None:
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_protos_are_formatted() -> None:
    # The whole workspace: our protos and the vendored ones (written formatted).
    result = buf("format", "--diff", "--exit-code")
    fix = "run `.venv/bin/buf format -w --path protos/mesh` (and `python tools/vendor_protos.py`)"
    assert result.returncode == 0, fix + ":\n" + result.stdout + result.stderr


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_no_breaking_change_against_previous_commit() -> None:
    # Compare with the commit before HEAD (what main had before this change);
    # with uncommitted proto changes, compare with HEAD itself.
    dirty = _git("status", "--porcelain", "--", "protos", "buf.yaml").stdout.strip()
    has_parent = _git("rev-parse", "--verify", "--quiet", "HEAD~1").returncode == 0
    ref = "HEAD" if dirty or not has_parent else "HEAD~1"
    had_protos = _git("cat-file", "-e", f"{ref}:buf.yaml").returncode == 0
    if not had_protos:
        ref = "HEAD"
    result = buf("breaking", "--against", f".git#ref={ref}")
    assert result.returncode == 0, f"breaking change against {ref}:\n{result.stdout}{result.stderr}"


def test_generated_code_is_fresh() -> None:
    stale = codegen.stale_files()
    assert stale == [], f"run ./mesh gen; stale: {stale}"


def test_every_rpc_has_an_http_binding() -> None:
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pb2

    from local_stack.paths import DESCRIPTOR_SET

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    methods = [
        (f"{f.package}.{s.name}", m)
        for f in files
        if f.package.startswith("mesh.")
        for s in f.service
        for m in s.method
    ]
    assert len(methods) >= 3
    for service, method in methods:
        rule = method.options.Extensions[annotations_pb2.http]
        assert rule.WhichOneof("pattern"), f"{service}.{method.name} has no google.api.http binding"
