"""Wire the LLM service: provider, servicer, gRPC server."""

from __future__ import annotations

from llm_svc.api import LlmServicer
from llm_svc.config import LlmSettings
from llm_svc.providers import OfflineProvider
from mesh.llm.v1 import llm_service_pb2, llm_service_pb2_grpc
from mesh_runtime.auth import verifier_from_settings
from mesh_runtime.server import ServiceBinding, create_server
from mesh_runtime.service_main import Built

SERVICE_NAME = llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name


async def build(settings: LlmSettings) -> Built:
    """Start the server with the offline provider; return it and its cleanup."""
    verifier = verifier_from_settings(settings.jwks_file, settings.issuer, settings.audience)
    running = await create_server(
        f"{settings.grpc_host}:{settings.grpc_port}",
        [
            ServiceBinding(
                SERVICE_NAME,
                llm_service_pb2_grpc.add_LlmServiceServicer_to_server,
                LlmServicer(OfflineProvider(), settings),
            )
        ],
        verifier=verifier,
        reflection_enabled=settings.reflection,
    )
    return running, lambda: None
