"""Which secrets each process of the local stack may see.

A secret variable (a password, a key, a URL carrying credentials) reaches a
process only when that process's own settings class reads it: the first
admin's password only the analytics API, the link secret only notify, the
LLM keys only llm. Infrastructure (PostgreSQL, NATS, Envoy, the mail
catcher) gets none. The supervisor's own environment (a developer's shell,
.env) is filtered the same way.
"""

from __future__ import annotations

import re
import sys
from functools import cache

from local_stack.paths import ROOT
from mesh_runtime.config import describe_settings

SECRET_VARIABLES = frozenset(
    {
        "AUTH_BOOTSTRAP_ADMIN_USERNAME",
        "AUTH_BOOTSTRAP_ADMIN_PASSWORD",
        "AUTH_SIGNING_KEY_FILE",
        "NOTIFY_LINK_SECRET",
        "ANALYTICS_DATABASE_URL",
        "NOTIFY_DATABASE_URL",
        "NATS_URL",
        "OPENROUTER_API_KEY",
        "LLM_API_KEY",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        # docker compose's, never read by a process of the local stack
        "POSTGRES_PASSWORD",
        "ANALYTICS_DB_PASSWORD",
        "NOTIFY_DB_PASSWORD",
        "NATS_PASSWORD",
    }
)


def settings_classes() -> dict[str, type]:
    """The settings class each of the mesh's own processes loads at start, by
    process kind (the same names as the containers)."""
    from analytics_svc.config import AnalyticsSettings, SchedulerSettings, WorkerSettings
    from gateway.docs_portal.config import DocsSettings
    from llm_svc.config import LlmSettings
    from notify_svc.config import NotifySettings

    web_dir = str(ROOT / "web")
    if web_dir not in sys.path:
        sys.path.insert(0, web_dir)
    from mesh_web.service_clients import ServiceSettings

    return {
        "analytics": AnalyticsSettings,
        "analytics-scheduler": SchedulerSettings,
        "analytics-worker": WorkerSettings,
        "llm": LlmSettings,
        "notify": NotifySettings,
        "docs": DocsSettings,
        "web": ServiceSettings,
    }


def process_kind(name: str) -> str:
    """The kind of the stack's process ``name`` ("analytics-worker-2" is an "analytics-worker")."""
    return re.sub(r"-\d+$", "", name)


@cache
def variables_read(kind: str) -> frozenset[str]:
    """The environment variables a process of ``kind`` reads (none for infrastructure)."""
    cls = settings_classes().get(kind)
    return frozenset(name for name, _, _ in describe_settings(cls)) if cls else frozenset()


def withheld_from(name: str) -> frozenset[str]:
    """The secret variables the process ``name`` must not be given."""
    return SECRET_VARIABLES - variables_read(process_kind(name))
