"""Each secret reaches only the processes of the local stack whose settings read it."""

from __future__ import annotations

import psutil

from local_stack.process_env import SECRET_VARIABLES, process_kind, variables_read
from tests.conftest import RunningStack


def environments(mesh: RunningStack) -> dict[str, dict[str, str]]:
    """The environment each running process of the test stack was started with."""
    return {p.spec.name: psutil.Process(p.pid).environ() for p in mesh.stack.processes if p.pid is not None}


def test_secrets_reach_only_the_processes_that_read_them(mesh: RunningStack) -> None:
    seen = environments(mesh)
    assert {"postgres", "nats", "mail", "envoy", "analytics", "llm", "notify", "docs"} <= set(seen)
    leaks = {
        name: sorted(SECRET_VARIABLES & set(env) - variables_read(process_kind(name))) for name, env in seen.items()
    }
    assert {name: found for name, found in leaks.items() if found} == {}
    # ... and each reached the process that needs it.
    assert seen["analytics"]["AUTH_BOOTSTRAP_ADMIN_PASSWORD"] == mesh.credentials["admin"][1]
    assert len(seen["notify"]["NOTIFY_LINK_SECRET"]) >= 32
    assert "AUTH_SIGNING_KEY_FILE" in seen["analytics"] and "AUTH_SIGNING_KEY_FILE" not in seen["llm"]
    assert "NOTIFY_DATABASE_URL" in seen["notify"] and "NOTIFY_DATABASE_URL" not in seen["analytics"]


def test_infrastructure_reads_no_settings_of_ours() -> None:
    assert variables_read("postgres") == variables_read("envoy") == frozenset()
    assert "NOTIFY_LINK_SECRET" in variables_read(process_kind("notify"))
    assert "NATS_URL" in variables_read(process_kind("analytics-worker-2"))
