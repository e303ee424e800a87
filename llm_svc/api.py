"""LlmService servicer: thin adapters between protos and the guarded provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.duration_pb2 import Duration

from llm_svc.config import LlmSettings
from llm_svc.guarded_provider import Call, GuardedProvider
from llm_svc.providers import Completion, Message, Provider
from llm_svc.usage import UsageTotals
from mesh.llm.v1 import completion_pb2, llm_service_pb2, llm_service_pb2_grpc, model_pb2, usage_pb2
from mesh_runtime.pagination import decode_page_token, encode_page_token, page_size

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
_MODELS_QUERY = "models"

CompletionRequest = llm_service_pb2.CompleteRequest | llm_service_pb2.StreamCompleteRequest


def _call(request: CompletionRequest) -> Call:
    return Call(
        messages=[Message(_ROLES[m.role], m.content) for m in request.messages],
        model=request.model,
        max_tokens=request.max_tokens,
        temperature=request.temperature if request.HasField("temperature") else None,
    )


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _usage(completion: Completion) -> completion_pb2.TokenUsage:
    return completion_pb2.TokenUsage(
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        total_tokens=completion.prompt_tokens + completion.completion_tokens,
    )


def _totals(totals: UsageTotals) -> usage_pb2.UsageTotals:
    return usage_pb2.UsageTotals(
        requests=totals.requests,
        cache_hits=totals.cache_hits,
        failures=totals.failures,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        total_tokens=totals.total_tokens,
    )


def _page_key(after: list[object]) -> int:
    (index,) = after
    if not isinstance(index, int) or index < 0:
        raise ValueError("bad page key")
    return index


class LlmServicer(llm_service_pb2_grpc.LlmServiceServicer):
    """Completes conversations with the configured provider, through the guarded provider."""

    def __init__(self, provider: Provider, settings: LlmSettings) -> None:
        self.guarded = GuardedProvider(provider, settings)

    async def Complete(
        self, request: llm_service_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> llm_service_pb2.CompleteResponse:
        result = await self.guarded.complete(_call(request), context.time_remaining())
        return llm_service_pb2.CompleteResponse(
            text=result.text,
            finish_reason=_FINISH.get(result.finish_reason, completion_pb2.FINISH_REASON_UNSPECIFIED),
            usage=_usage(result),
            provider=result.provider,
            model=result.model,
            latency=_duration(result.latency_seconds),
            cached=result.cached,
        )

    async def StreamComplete(
        self, request: llm_service_pb2.StreamCompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[llm_service_pb2.StreamCompleteResponse]:
        async for event in self.guarded.stream(_call(request), context.time_remaining()):
            if isinstance(event, str):
                yield llm_service_pb2.StreamCompleteResponse(text=event)
                continue
            yield llm_service_pb2.StreamCompleteResponse(
                finish_reason=_FINISH.get(event.finish_reason, completion_pb2.FINISH_REASON_UNSPECIFIED),
                usage=_usage(event),
                provider=event.provider,
                model=event.model,
                latency=_duration(event.latency_seconds),
                cached=event.cached,
            )

    async def ListModels(
        self, request: llm_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> llm_service_pb2.ListModelsResponse:
        models = self.guarded.models()
        start = decode_page_token(request.page_token, _MODELS_QUERY, _page_key) or 0
        end = start + page_size(request.page_size)
        return llm_service_pb2.ListModelsResponse(
            models=[model_pb2.Model(name=m.name, provider=m.provider, default=m.default) for m in models[start:end]],
            next_page_token=encode_page_token([end], _MODELS_QUERY) if end < len(models) else "",
        )

    async def GetUsage(
        self, request: llm_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> llm_service_pb2.GetUsageResponse:
        ledger = self.guarded.usage
        response = llm_service_pb2.GetUsageResponse(
            totals=_totals(ledger.overall()),
            models=[
                usage_pb2.ModelUsage(provider=provider, model=model, totals=_totals(totals))
                for (provider, model), totals in sorted(ledger.by_model.items())
            ],
        )
        response.start_time.FromDatetime(ledger.since)
        return response
