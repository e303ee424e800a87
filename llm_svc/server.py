"""Wire the LLM service: provider, servicer, gRPC server."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from llm_svc.api import LlmServicer
from llm_svc.config import LlmSettings
from llm_svc.metrics import expose_usage
from llm_svc.openai_provider import OpenAICompatibleProvider
from llm_svc.providers import OfflineProvider, Provider
from mesh.llm.v1 import llm_service_pb2_grpc
from mesh_runtime import contracts
from mesh_runtime.auth import verifier_from_settings
from mesh_runtime.metrics import metrics_enabled
from mesh_runtime.revocation_follower import RevocationFollower
from mesh_runtime.server import ServiceBinding, create_server
from mesh_runtime.service_main import Built

SERVICE_NAME = contracts.LLM_SERVICE

OPENROUTER_DEFAULT_MODEL = "openai/gpt-4o-mini"
OPENAI_COMPATIBLE_DEFAULT_MODEL = "gpt-4o-mini"

logger = logging.getLogger("mesh.llm")

# HTTP client libraries log requests (and at debug, headers and bodies):
# keys and prompts must not reach the logs through them.
_QUIET_LOGGERS = ("openai", "httpx", "httpx2", "httpcore", "httpcore2")


def provider_from_settings(settings: LlmSettings) -> Provider:
    """The provider the settings choose: LLM_BASE_URL, else OpenRouter, else offline."""
    if settings.base_url:
        return OpenAICompatibleProvider(
            name="openai-compatible",
            base_url=settings.base_url,
            api_key=settings.api_key,
            key_variable="LLM_API_KEY",
            default_model=settings.default_model or OPENAI_COMPATIBLE_DEFAULT_MODEL,
            models=settings.models,
        )
    if settings.openrouter_api_key:
        return OpenAICompatibleProvider(
            name="openrouter",
            base_url=settings.openrouter_base_url,
            api_key=settings.openrouter_api_key,
            key_variable="OPENROUTER_API_KEY",
            default_model=settings.default_model or OPENROUTER_DEFAULT_MODEL,
            models=settings.models,
            # OpenRouter's optional attribution header.
            default_headers={"X-Title": "Analytics Mesh"},
        )
    return OfflineProvider()


async def build(settings: LlmSettings) -> Built:
    """Start the server with the configured provider; return it and its cleanup."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    verifier = verifier_from_settings(settings.jwks_file, settings.issuer, settings.audience)
    provider = provider_from_settings(settings)
    servicer = LlmServicer(provider, settings)
    endpoint = urlsplit(getattr(provider, "base_url", ""))  # host and port only: no credentials
    where = f"{endpoint.hostname}:{endpoint.port or ''}".rstrip(":") if endpoint.hostname else "local"
    logger.info(
        "provider",
        extra={"provider": provider.name, "endpoint": where, "default_model": provider.models()[0]},
    )
    revocations = RevocationFollower(settings.nats_url, verifier.revocations, "llm")
    try:
        running = await create_server(
            f"{settings.grpc_host}:{settings.grpc_port}",
            [ServiceBinding(SERVICE_NAME, llm_service_pb2_grpc.add_LlmServiceServicer_to_server, servicer)],
            verifier=verifier,
            reflection_enabled=settings.reflection,
        )
    except BaseException:
        await servicer.guarded.aclose()
        raise
    revocations.start()
    if metrics_enabled():
        expose_usage(servicer.guarded)

    async def cleanup() -> None:
        await revocations.close()
        await servicer.guarded.aclose()

    return running, cleanup
