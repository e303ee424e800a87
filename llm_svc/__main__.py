"""python -m llm_svc: run the LLM gRPC service."""

from llm_svc.config import LlmSettings
from llm_svc.server import build
from mesh_runtime.service_main import run_service

if __name__ == "__main__":
    run_service("llm", LlmSettings, build)
