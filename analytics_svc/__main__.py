"""python -m analytics_svc: run the analytics gRPC service."""

from analytics_svc.config import AnalyticsSettings
from analytics_svc.server import build
from mesh_runtime.service_main import run_service

if __name__ == "__main__":
    run_service("analytics", AnalyticsSettings, build)
