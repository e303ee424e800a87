"""Any OpenAI-compatible chat-completions endpoint, through the ``openai`` client:
OpenRouter, OpenAI itself, a local Ollama or vLLM.

One call here is one attempt: the client's own retries are off (the guarded provider
retries, within the caller's deadline), its timeout is the time the attempt
has left, and every failure becomes a ``ProviderFailure`` whose message
never contains the API key.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from llm_svc.config import Secret
from llm_svc.providers import (
    BadCredentials,
    Completion,
    MalformedResponse,
    Message,
    ProviderFailure,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
    RequestRejected,
    ServerError,
    StreamEvent,
    estimate_tokens,
    time_left,
)

# Placeholder for endpoints that need no key (a local Ollama): the client
# insists on one, and such servers ignore it.
_NO_KEY = "no-key-configured"
_MAX_MESSAGE_CHARS = 300
# Longest an attempt may wait when nothing bounds it (the guarded provider always does).
_UNBOUNDED_TIMEOUT = 600.0


class OpenAICompatibleProvider:
    """Completes conversations at an OpenAI-compatible ``base_url``.

    ``key_variable`` names the setting that holds ``api_key``, so a rejected
    key is reported as "fix OPENROUTER_API_KEY" rather than a bare 401.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: Secret,
        key_variable: str,
        default_model: str,
        models: Sequence[str] = (),
        default_headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.key_variable = key_variable
        self.default_model = default_model
        self._models = list(dict.fromkeys([default_model, *models]))
        self._secret = api_key.reveal()
        self._client = openai.AsyncOpenAI(
            api_key=self._secret or _NO_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=_UNBOUNDED_TIMEOUT,
            default_headers=default_headers,
        )

    def models(self) -> list[str]:
        return list(self._models)

    async def aclose(self) -> None:
        await self._client.close()

    def _arguments(
        self, messages: list[Message], model: str, max_tokens: int, temperature: float | None
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": model or self.default_model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "timeout": time_left() or _UNBOUNDED_TIMEOUT,
        }
        if temperature is not None:
            arguments["temperature"] = temperature
        return arguments

    async def complete(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> Completion:
        started = time.perf_counter()
        arguments = self._arguments(messages, model, max_tokens, temperature)
        try:
            response = await self._client.chat.completions.create(**arguments)
        except Exception as error:  # noqa: BLE001 - every client error becomes a ProviderFailure
            raise self._failure(error) from None
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            if not isinstance(text, str):
                raise TypeError("content is not text")
            usage = response.usage
            prompt = usage.prompt_tokens if usage else sum(estimate_tokens(m.content) for m in messages)
            answer = usage.completion_tokens if usage else estimate_tokens(text)
            return Completion(
                text=text,
                finish_reason=str(choice.finish_reason or ""),
                prompt_tokens=int(prompt),
                completion_tokens=int(answer),
                provider=self.name,
                model=str(response.model or arguments["model"]),
                latency_seconds=time.perf_counter() - started,
            )
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raise MalformedResponse(self.name, f"{self.name} sent a response that is not a chat completion") from None

    async def stream(
        self, messages: list[Message], model: str, max_tokens: int, *, temperature: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        arguments = self._arguments(messages, model, max_tokens, temperature)
        try:
            chunks = await self._client.chat.completions.create(
                **arguments, stream=True, stream_options={"include_usage": True}
            )
        except Exception as error:  # noqa: BLE001 - every client error becomes a ProviderFailure
            raise self._failure(error) from None
        pieces: list[str] = []
        finish, served_model, usage, received = "", str(arguments["model"]), None, 0
        try:
            async for chunk in chunks:
                received += 1
                try:
                    served_model = str(chunk.model or served_model)
                    usage = chunk.usage or usage
                    for choice in chunk.choices or ():
                        finish = str(choice.finish_reason or finish)
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            pieces.append(piece)
                            yield piece
                except (AttributeError, TypeError) as bad:
                    message = f"{self.name} sent a stream chunk that is not a chat completion chunk"
                    raise MalformedResponse(self.name, message) from bad
        except ProviderFailure:
            raise
        except Exception as error:  # noqa: BLE001 - every client error becomes a ProviderFailure
            raise self._failure(error) from None
        finally:
            await chunks.close()
        if not received:
            raise MalformedResponse(self.name, f"{self.name} sent no chat completion chunks")
        text = "".join(pieces)
        yield Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=int(usage.prompt_tokens) if usage else sum(estimate_tokens(m.content) for m in messages),
            completion_tokens=int(usage.completion_tokens) if usage else estimate_tokens(text),
            provider=self.name,
            model=served_model,
            latency_seconds=time.perf_counter() - started,
        )

    # --- failures -------------------------------------------------------------------

    def _say(self, message: str) -> str:
        """A provider's message made safe to relay: no key, not too long."""
        if self._secret:
            message = message.replace(self._secret, "***")
        message = " ".join(message.split())
        return message[:_MAX_MESSAGE_CHARS]

    def _failure(self, error: Exception) -> ProviderFailure:
        name = self.name
        if isinstance(error, openai.APITimeoutError):
            return ProviderTimeout(name, f"{name} did not answer in time")
        if isinstance(error, openai.APIConnectionError):
            return ProviderUnreachable(name, f"cannot reach {name} at {self.base_url}")
        if isinstance(error, openai.APIResponseValidationError):
            return MalformedResponse(name, f"{name} sent a response that is not a chat completion")
        if isinstance(error, openai.APIStatusError):
            return self._status_failure(error)
        if isinstance(error, openai.APIError):  # e.g. an error event in the middle of a stream
            return ServerError(name, f"{name} failed: {self._say(error.message)}")
        if isinstance(error, ValueError):  # the body was not JSON
            return MalformedResponse(name, f"{name} sent a response that is not a chat completion")
        return ProviderUnreachable(name, f"{name} call failed: {type(error).__name__}")

    def _status_failure(self, error: openai.APIStatusError) -> ProviderFailure:
        name, status = self.name, error.status_code
        said = self._say(_provider_message(error))
        retry_after = _retry_after(error.response.headers)
        if status == 401:
            message = f"{name} rejected the API key (HTTP 401); set {self.key_variable} to a valid key"
            return BadCredentials(name, message, self.key_variable)
        if status == 402:
            return ProviderRefused(name, f"{name} refused the request for lack of credits (HTTP 402): {said}")
        if status == 403:
            return ProviderRefused(name, f"{name} refused the request (HTTP 403): {said}")
        if status == 408:
            return ProviderTimeout(name, f"{name} timed out (HTTP 408)")
        if status == 429:
            return RateLimited(name, f"{name} is rate limiting requests (HTTP 429): {said}", retry_after)
        if status >= 500:
            return ServerError(name, f"{name} failed (HTTP {status}): {said}", retry_after)
        return RequestRejected(name, f"{name} rejected the request (HTTP {status}): {said}")


def _provider_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str) and message:
            return message
    return error.response.reason_phrase or "no details"


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), if any."""
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(float(raw) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
