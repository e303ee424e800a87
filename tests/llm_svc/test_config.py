"""Which provider the settings choose, and settings that cannot work."""

from __future__ import annotations

import pytest

from llm_svc.config import LlmSettings
from llm_svc.openai_provider import OpenAICompatibleProvider
from llm_svc.providers import OfflineProvider
from llm_svc.server import provider_from_settings
from mesh_runtime.config import ConfigError, Secret, load_settings


async def test_no_key_means_the_offline_provider() -> None:
    provider = provider_from_settings(load_settings(LlmSettings, {}))
    assert isinstance(provider, OfflineProvider)
    assert provider.models() == ["offline-summary-1"]


async def test_openrouter_key_means_openrouter_with_its_default_model() -> None:
    settings = load_settings(LlmSettings, {"OPENROUTER_API_KEY": "sk-or-123", "LLM_MODELS": "a/b, c/d,,a/b"})
    provider = provider_from_settings(settings)
    assert isinstance(provider, OpenAICompatibleProvider)
    assert (provider.name, provider.base_url, provider.key_variable) == (
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
    )
    assert provider.models() == ["openai/gpt-4o-mini", "a/b", "c/d"]
    await provider.aclose()


async def test_base_url_wins_and_needs_no_key() -> None:
    settings = load_settings(
        LlmSettings,
        {
            "OPENROUTER_API_KEY": "sk-or-123",
            "LLM_BASE_URL": "http://127.0.0.1:11434/v1/",
            "LLM_DEFAULT_MODEL": "llama3.2",
        },
    )
    provider = provider_from_settings(settings)
    assert isinstance(provider, OpenAICompatibleProvider)
    assert (provider.name, provider.base_url, provider.key_variable) == (
        "openai-compatible",
        "http://127.0.0.1:11434/v1",
        "LLM_API_KEY",
    )
    assert provider.models() == ["llama3.2"]
    await provider.aclose()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LLM_BASE_URL", "ollama:11434"),
        ("LLM_MAX_RETRIES", "-1"),
        ("LLM_TIMEOUT_SECONDS", "0"),
        ("LLM_CACHE_TTL_SECONDS", "soon"),
    ],
)
def test_bad_values_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(LlmSettings, {variable: value})
    assert str(caught.value).startswith(f"{variable}:")


def test_keys_never_show_in_settings_or_errors() -> None:
    settings = load_settings(LlmSettings, {"LLM_API_KEY": "sk-very-secret", "OPENROUTER_API_KEY": "sk-or-secret"})
    assert "secret" not in repr(settings) and "secret" not in str(settings.api_key)
    assert settings.api_key.reveal() == "sk-very-secret"
    assert not Secret() and Secret("x")
    with pytest.raises(ConfigError) as caught:
        load_settings(LlmSettings, {"LLM_BASE_URL": "ftp://user:hunter2@host/v1"})
    assert "hunter2" not in str(caught.value)
