"""Settings parsing: defaults, typed values, one clear error per bad variable."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from analytics_svc.config import AnalyticsSettings
from mesh_runtime.config import (
    ConfigError,
    describe_settings,
    load_settings,
    parse_bool,
    parse_http_url,
    redact_url,
    setting,
)
from mesh_runtime.config import parse_port as port


def test_defaults_apply_when_unset() -> None:
    settings = load_settings(AnalyticsSettings, {})
    assert settings.grpc_port == 50051
    assert settings.log_format == "json"


def test_values_are_parsed_and_typed() -> None:
    settings = load_settings(
        AnalyticsSettings,
        {"ANALYTICS_GRPC_PORT": "6000", "MESH_LOG_FORMAT": "TEXT", "MESH_GRPC_REFLECTION": "off"},
    )
    assert settings.grpc_port == 6000
    assert settings.log_format == "text"
    assert settings.reflection is False


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ANALYTICS_GRPC_PORT", "abc", "expected an integer"),
        ("ANALYTICS_GRPC_PORT", "70000", "between 0 and 65535"),
        ("MESH_LOG_LEVEL", "loud", "expected one of"),
        ("MESH_SHUTDOWN_GRACE_SECONDS", "-1", "greater than 0"),
        ("MESH_SHUTDOWN_GRACE_SECONDS", "nan", "finite"),
        ("ANALYTICS_DATABASE_URL", "mysql://x/y", "postgresql://"),
        ("ANALYTICS_DB_POOL_SIZE", "0", "greater than 0"),
        ("ANALYTICS_PAGE_CACHE_MB", "-1", "0 or more"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(AnalyticsSettings, {variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert expected in message
    assert "\n" not in message


def test_passwords_never_appear_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(AnalyticsSettings, {"ANALYTICS_DATABASE_URL": "mysql://u:hunter2@db/x"})
    assert "hunter2" not in str(caught.value)
    assert redact_url("postgresql://u:s3cret@h:5432/d") == "postgresql://u:***@h:5432/d"



def test_secret_settings_never_show_in_a_repr_or_log_line() -> None:
    from notify_svc.config import NotifySettings

    analytics = load_settings(AnalyticsSettings, {"AUTH_BOOTSTRAP_ADMIN_PASSWORD": "hunter2-hunter2"})
    notify = load_settings(NotifySettings, {"SMTP_PASSWORD": "smtp-s3cret", "NOTIFY_LINK_SECRET": "k" * 40})
    shown = f"{analytics!r} {notify!r} {notify.smtp_password}"
    assert "hunter2" not in shown and "smtp-s3cret" not in shown and "k" * 40 not in shown
    assert (analytics.bootstrap_admin_password.reveal(), notify.smtp_password.reveal()) == (
        "hunter2-hunter2", "smtp-s3cret"
    )
    assert not load_settings(NotifySettings, {}).smtp_password  # unset: empty


def test_http_urls_are_checked_and_lose_their_trailing_slash() -> None:
    assert parse_http_url(" https://api.example.com:8443/v1/ ") == "https://api.example.com:8443/v1"
    for bad in ("api.example.com", "ftp://host", "http://", "http://host:99999"):
        with pytest.raises(ValueError, match="http|port"):
            parse_http_url(bad)
    with pytest.raises(ValueError) as caught:
        parse_http_url("ftp://user:hunter2@host")
    assert "hunter2" not in str(caught.value)

def test_bool_words() -> None:
    assert [parse_bool(v) for v in ("yes", "ON", "1", "false", "no", "0")] == [True] * 3 + [False] * 3
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_every_setting_is_documented_in_env_example() -> None:
    from pathlib import Path

    from analytics_svc.config import SchedulerSettings, WorkerSettings
    from llm_svc.config import LlmSettings
    from local_stack.stack import StackSettings
    from notify_svc.config import NotifySettings
    from web.mesh_web.service_clients import ServiceSettings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for cls in (AnalyticsSettings, SchedulerSettings, WorkerSettings, LlmSettings, NotifySettings, StackSettings,
                ServiceSettings):
        for variable, _default, doc in describe_settings(cls):
            assert f"{variable}=" in example, f"{variable} missing from .env.example"
            assert doc, f"{variable} has no description"


def test_custom_settings_class() -> None:
    @dataclass(frozen=True)
    class Example:
        listen: int = setting("EXAMPLE_PORT", 1, port)

    assert load_settings(Example, {"EXAMPLE_PORT": " 8080 "}).listen == 8080


def test_no_token_may_outlive_the_revocations_stream() -> None:
    from mesh_runtime.config import RuntimeSettings

    assert load_settings(RuntimeSettings, {"AUTH_MAX_TOKEN_TTL_SECONDS": "604800"}).max_token_ttl_seconds == 604800
    with pytest.raises(ConfigError, match="AUTH_MAX_TOKEN_TTL_SECONDS.*a week"):
        load_settings(RuntimeSettings, {"AUTH_MAX_TOKEN_TTL_SECONDS": "604801"})
