"""Imports run in the directions ARCHITECTURE.md allows.

Inside a service, from the outside in: ``__main__`` -> entry points (``server``,
the analytics worker and scheduler) -> servicers (``api`` modules) -> domain
-> stores -> ``schema``/``config``. Modules of the three inner layers may use
their peers; servicers and entry points never import each other, so only
``server`` wires servicers and only ``__main__`` imports ``server``. No
service imports another service, the shared runtime imports no product
package, the web app imports no service, and no import graph has a cycle.
(Product code never importing the dev tooling is tests/test_dev_tooling_imports.py.)
"""

from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVICES = ("analytics_svc", "llm_svc", "notify_svc")
# Processes of their own besides the gRPC server.
OTHER_ENTRY_POINTS = {"analytics_svc": {"jobs.worker", "jobs.scheduler"}}
# Outer adapters that are not servicers but stand where they do (the CLI calls it).
OTHER_SERVICERS = {"analytics_svc": {"auth.admin"}}
# Stores not named store.py: the outbox, the lease protocol on result rows, chunk scans.
OTHER_STORES = {"analytics_svc": {"jobs.outbox", "jobs.leases", "points.scan"}}
# Beside schema and config at the bottom: the stored format of points (chunk layout
# and codec, binary COPY rows), which the schema's migrations write as the store does.
OTHER_BASE = {"analytics_svc": {"points.chunks", "points.pgcopy"}}

MAIN, ENTRY, SERVICERS, DOMAIN, STORES, BASE = 5, 4, 3, 2, 1, 0
LAYER_NAMES = {
    MAIN: "__main__", ENTRY: "entry point", SERVICERS: "servicer",
    DOMAIN: "domain", STORES: "store", BASE: "schema/config",
}  # fmt: skip

# Every folder of project code, as the package name it is imported by.
PACKAGES = {
    "analytics_svc": "analytics_svc", "llm_svc": "llm_svc", "notify_svc": "notify_svc",
    "mesh_runtime": "mesh_runtime", "mesh_web": "web/mesh_web", "mail_catcher": "mail_catcher",
    "gateway": "gateway", "deploy": "deploy", "local_stack": "local_stack", "mesh_cli": "mesh_cli",
    "sample_data": "sample_data",
}  # fmt: skip


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. analytics_svc.results.store
    path: Path


def package_modules(package: str, folder: Path) -> dict[str, Module]:
    """The modules under ``folder``, named as ``package`` imports them."""
    found = {}
    for path in folder.rglob("*.py"):
        if ".web" in path.parts:
            continue
        parts = [package, *path.relative_to(folder).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path)
    return found


def imported(module: Module, known: set[str]) -> set[str]:
    """The project modules ``module`` imports, at any depth of its code (lazy imports too);
    ``from a import b`` counts as importing ``a.b`` when that is a module."""
    targets: set[str] = set()
    is_package = module.path.name == "__init__.py"
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.name.split(".")[: None if is_package else -1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in known else base)
    return {t for t in targets if t in known}


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    known = set(modules)
    return {name: imported(module, known) - {name} for name, module in modules.items()}


def project_graph() -> dict[str, set[str]]:
    modules: dict[str, Module] = {}
    for package, folder in PACKAGES.items():
        modules.update(package_modules(package, ROOT / folder))
    return import_graph(modules)


def layer(service: str, name: str) -> int:
    """The layer of module ``name`` (relative to its service package)."""
    last = name.rsplit(".", 1)[-1]
    if name == "__main__":
        return MAIN
    if name == "server" or name in OTHER_ENTRY_POINTS.get(service, set()):
        return ENTRY
    if last == "api" or last.endswith("_api") or name in OTHER_SERVICERS.get(service, set()):
        return SERVICERS
    if last == "store" or name in OTHER_STORES.get(service, set()):
        return STORES
    if name in {"schema", "config"} or name in OTHER_BASE.get(service, set()):
        return BASE
    return DOMAIN


def upward_imports(service: str, graph: dict[str, set[str]]) -> list[str]:
    """Imports inside ``service`` that point outwards, or sideways between servicers or entry points."""
    prefix = service + "."
    wrong = []
    for source, targets in graph.items():
        if not source.startswith(prefix):
            continue
        for target in targets:
            if not target.startswith(prefix):
                continue
            a, b = layer(service, source.removeprefix(prefix)), layer(service, target.removeprefix(prefix))
            if b > a or (b == a and a >= SERVICERS):
                wrong.append(f"{source} ({LAYER_NAMES[a]}) imports {target} ({LAYER_NAMES[b]})")
    return sorted(wrong)


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (package ``__init__`` modules left out), or []."""
    inner = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    try:
        graphlib.TopologicalSorter(inner).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return project_graph()


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_point_inwards(service: str, graph: dict[str, set[str]]) -> None:
    assert upward_imports(service, graph) == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_import_graph_has_no_cycle(service: str, graph: dict[str, set[str]]) -> None:
    assert cycle({m: ts for m, ts in graph.items() if top(m) == service}) == []


def test_only_server_wires_servicers_and_only_main_imports_server(graph: dict[str, set[str]]) -> None:
    wrong = []
    for source, targets in graph.items():
        for target in targets:
            service = top(target)
            if service not in SERVICES:
                continue
            relative = target.removeprefix(service + ".")
            if relative == "server" and source != f"{service}.__main__":
                wrong.append(f"{source} imports {target}")
            if layer(service, relative) == SERVICERS and source != f"{service}.server":
                if relative not in OTHER_SERVICERS.get(service, set()):
                    wrong.append(f"{source} imports {target}")
    assert sorted(wrong) == []


def test_no_service_imports_another_service(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if top(source) in SERVICES
        for target in targets
        if top(target) in SERVICES and top(target) != top(source)
    ]
    assert sorted(wrong) == []


def test_the_shared_runtime_and_the_web_app_import_no_service(graph: dict[str, set[str]]) -> None:
    below = {"mesh_runtime": set(PACKAGES) - {"mesh_runtime"}, "mesh_web": set(SERVICES)}
    wrong = [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if top(source) in below
        for target in targets
        if top(target) in below[top(source)]
    ]
    assert sorted(wrong) == []


def test_project_packages_import_each_other_without_a_cycle(graph: dict[str, set[str]]) -> None:
    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        packages.setdefault(top(source), set()).update(top(t) for t in targets if top(t) != top(source))
    assert cycle(packages) == []


def test_the_checks_see_upward_imports_cycles_and_servicer_imports(tmp_path: Path) -> None:
    service = tmp_path / "analytics_svc"
    (service / "results").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "schema.py": "",
        "results/__init__.py": "",
        # A store reaching up to a servicer (lazily), and a domain cycle.
        "results/store.py": "from analytics_svc import schema\ndef f():\n    from analytics_svc.results import api\n",
        "results/api.py": "from .. import schema\n",
        "results/watch.py": "from analytics_svc.results import caches\n",
        "results/caches.py": "import analytics_svc.results.watch\n",
    }
    for name, text in files.items():
        (service / name).write_text(text)
    graph = import_graph(package_modules("analytics_svc", service))
    assert upward_imports("analytics_svc", graph) == [
        "analytics_svc.results.store (store) imports analytics_svc.results.api (servicer)"
    ]
    assert set(cycle(graph)) == {"analytics_svc.results.watch", "analytics_svc.results.caches"}
    assert graph["analytics_svc.results.api"] == {"analytics_svc.schema"}  # the relative import resolved
