"""LlmService servicer: thin adapter between protos and a provider."""

from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration

from llm_svc.config import LlmSettings
from llm_svc.providers import Message, Provider
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc

_ROLES = {
    completion_pb2.ROLE_SYSTEM: "system",
    completion_pb2.ROLE_USER: "user",
    completion_pb2.ROLE_ASSISTANT: "assistant",
}
_FINISH = {
    "stop": completion_pb2.FINISH_REASON_STOP,
    "length": completion_pb2.FINISH_REASON_LENGTH,
    "content_filter": completion_pb2.FINISH_REASON_CONTENT_FILTER,
}


class LlmServicer(llm_service_pb2_grpc.LlmServiceServicer):
    """Completes conversations with the configured provider."""

    def __init__(self, provider: Provider, settings: LlmSettings) -> None:
        self.provider = provider
        self.settings = settings

    async def Complete(
        self, request: llm_service_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> llm_service_pb2.CompleteResponse:
        messages = [Message(_ROLES[m.role], m.content) for m in request.messages]
        result = await self.provider.complete(
            messages,
            request.model or self.settings.default_model,
            request.max_tokens or self.settings.default_max_tokens,
        )
        latency = Duration()
        latency.FromNanoseconds(int(result.latency_seconds * 1e9))
        return llm_service_pb2.CompleteResponse(
            text=result.text,
            finish_reason=_FINISH.get(result.finish_reason, completion_pb2.FINISH_REASON_UNSPECIFIED),
            usage=completion_pb2.TokenUsage(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
            ),
            provider=result.provider,
            model=result.model,
            latency=latency,
        )
