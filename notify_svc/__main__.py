"""python -m notify_svc: run the notify gRPC service."""

from mesh_runtime.service_main import run_service
from notify_svc.config import NotifySettings
from notify_svc.server import build

if __name__ == "__main__":
    run_service("notify", NotifySettings, build)
