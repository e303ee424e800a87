"""A real HTTP server speaking the OpenAI chat-completions API, scripted per test.

It runs uvicorn (FastAPI) in a background thread on a free port, so the
real ``openai`` client talks to it over real HTTP, streaming (server-sent
events) and not. Each test pushes the replies it wants (``ok``, ``error``,
``slow``, ``malformed``); when the script is empty the server answers with
``default``. Every request is recorded, including whether its client hung up
before the answer (an abandoned request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.eventually import eventually

GOOD_KEY = "sk-test-good-0123456789"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    text: str = "The mean is 12.5 and the trend is rising."
    finish_reason: str = "stop"
    delay: float = 0.0  # seconds before answering (the client may hang up first)
    body: str | None = None  # a raw body instead of a chat completion
    headers: dict[str, str] = field(default_factory=dict)
    stall_after: int | None = None  # streaming: hold the stream after this many pieces


def ok(text: str = Reply.text, finish_reason: str = "stop") -> Reply:
    return Reply(text=text, finish_reason=finish_reason)


def error(status: int, message: str = "", **headers: str) -> Reply:
    body = json.dumps({"error": {"message": message or f"fake error {status}", "type": "fake", "code": status}})
    return Reply(status=status, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def slow(seconds: float, text: str = Reply.text) -> Reply:
    return Reply(text=text, delay=seconds)


def malformed(body: str = "this is not JSON {") -> Reply:
    return Reply(body=body)


@dataclass
class Seen:
    """A request the server received."""

    body: dict[str, Any]
    authorization: str
    abandoned: bool = False  # the client hung up before the answer


def _words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]


class FakeOpenAI:
    """The server and its script; ``base_url`` is what LLM_BASE_URL points at."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[Seen] = []
        self.api_key = GOOD_KEY
        self.app = self._build_app()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- what tests use -------------------------------------------------------

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.default = Reply()
        self.api_key = GOOD_KEY

    def wait_until_abandoned(self, timeout: float = 10) -> Seen:
        """The first request whose client hung up, waiting for the server to notice."""
        return eventually(
            lambda: next((seen for seen in self.requests if seen.abandoned), None),
            timeout,
            lambda: f"a request to be abandoned: {self.requests}",
            interval=0.02,
        )

    # --- the server -------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            seen = Seen(body, request.headers.get("authorization", ""))
            self.requests.append(seen)
            presented = seen.authorization.removeprefix("Bearer ")
            if presented != self.api_key:
                # Like some real providers, echo the key back: callers must not relay it.
                message = f"Incorrect API key provided: {presented}"
                return JSONResponse({"error": {"message": message, "code": "invalid_api_key"}}, status_code=401)
            reply = self.script.popleft() if self.script else self.default
            if reply.delay and not await _wait_or_hang_up(request, reply.delay):
                seen.abandoned = True
                return Response(status_code=499)
            if reply.body is not None:
                return Response(
                    reply.body, status_code=reply.status, headers=reply.headers, media_type="application/json"
                )
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(
                    self._chunks(body, reply, include_usage, seen, request), media_type="text/event-stream"
                )
            return JSONResponse(self._completion(body, reply), headers=reply.headers)

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}

        return app

    @staticmethod
    def served_model(body: dict[str, Any]) -> str:
        return f"{body.get('model')}-snapshot"

    @staticmethod
    def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model(body),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": self._usage(body, reply.text),
        }

    async def _chunks(
        self, body: dict[str, Any], reply: Reply, include_usage: bool, seen: Seen, request: Request
    ) -> AsyncIterator[bytes]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.served_model(body),
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(chunk)}\n\n".encode()

        for number, piece in enumerate(_words(reply.text)):
            if reply.stall_after is not None and number >= reply.stall_after:
                try:  # Starlette cancels a streaming response when its client hangs up
                    if not await _wait_or_hang_up(request, 60):
                        seen.abandoned = True
                except asyncio.CancelledError:
                    seen.abandoned = True
                    raise
                return
            delta: dict[str, Any] = {"content": piece}
            if number == 0:
                delta["role"] = "assistant"
            yield event([{"index": 0, "delta": delta, "finish_reason": None}])
        yield event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
        if include_usage:
            yield event([], usage=self._usage(body, reply.text))
        yield b"data: [DONE]\n\n"

    def start(self) -> None:
        config = uvicorn.Config(self.app, log_config=None, log_level="warning", access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        thread, server = self._thread, self._server
        eventually(lambda: server.started or not thread.is_alive(), 10, "the fake OpenAI server", interval=0.01)
        if not server.started:
            raise RuntimeError("the fake OpenAI server did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._sock.close()


async def _wait_or_hang_up(request: Request, seconds: float) -> bool:
    """Wait ``seconds``; False as soon as the client hangs up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(0.02)
    return True


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handling: the test process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def running_fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
