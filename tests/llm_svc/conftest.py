"""The fake OpenAI-compatible server, shared by the LLM tests and reset for each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm_svc.fake_openai import FakeOpenAI, running_fake


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """The fake server with an empty script, no recorded requests and the good key."""
    fake_openai_server.reset()
    return fake_openai_server
