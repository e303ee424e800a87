"""Which settings class each container of the mesh loads, for checking what
compose and Kubernetes give it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Settings a container reads that .env.example does not list yet, with who reads
# them. Each must still be missing there (document it, then delete it here) and be
# declared with a description by that process's settings class.
NOT_YET_IN_ENV_EXAMPLE: dict[str, str] = {}


def settings_classes() -> dict[str, type]:
    """The settings each of our containers loads at start."""
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
