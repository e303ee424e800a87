"""Product code never imports the development tooling: no service, the web
app, the gateway, deploy scripts or the shared runtime import the local stack
supervisor (local_stack) or the command line (mesh_cli); only the web app and
the command line use the sample-data generator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from local_stack.paths import ROOT

PRODUCT = [
    "analytics_svc", "llm_svc", "notify_svc", "mesh_runtime", "gateway", "mail_catcher", "web/mesh_web", "deploy",
]  # fmt: skip
DEV_TOOLING = ("local_stack", "mesh_cli")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offending_imports(folder: Path, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    return sorted(
        f"{path.relative_to(root)} imports {module}"
        for path in folder.rglob("*.py")
        if ".web" not in path.parts
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden
    )


@pytest.mark.parametrize("package", PRODUCT)
def test_product_code_does_not_import_dev_tooling(package: str) -> None:
    assert offending_imports(ROOT / package, DEV_TOOLING) == []


def test_sample_data_is_used_only_by_the_web_app_and_the_cli() -> None:
    services = [p for p in PRODUCT if p != "web/mesh_web"]
    assert [line for p in services for line in offending_imports(ROOT / p, ("sample_data",))] == []
    assert offending_imports(ROOT / "sample_data", DEV_TOOLING) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from local_stack.stack import Stack\n    return Stack\n")
    assert offending_imports(tmp_path, DEV_TOOLING, root=tmp_path) == ["lazy.py imports local_stack.stack"]
