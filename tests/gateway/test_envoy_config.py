"""The rendered Envoy config is accepted by Envoy itself, routes every
service, and lets only public RPCs through without a token."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool

from gateway import envoy_config
from local_stack import infra
from local_stack.paths import DESCRIPTOR_SET
from local_stack.stack import Stack, StackError, StackSettings, local_upstreams
from mesh_runtime.auth import rule_table
from mesh_runtime.auth_keys import KeyFolder


def local_config(tmp_path: Path, descriptor: str = str(DESCRIPTOR_SET), **options: Any) -> dict[str, Any]:
    keys = KeyFolder(tmp_path / "auth")
    keys.ensure()
    return envoy_config.render(
        listen_address="127.0.0.1",
        listen_port=18080,
        admin_address="127.0.0.1",
        admin_port=19901,
        descriptor_path=descriptor,
        upstreams=local_upstreams(StackSettings()),
        jwks_path=str(keys.jwks),
        **options,
    )


DOCS = envoy_config.HttpUpstream("docs", "127.0.0.1", 18090)
WEB_ORIGIN = "http://127.0.0.1:3000"


def connection_manager(config: dict[str, Any]) -> dict[str, Any]:
    hcm: dict[str, Any] = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]  # type: ignore[no-any-return]


def test_envoy_validates_the_local_config(tmp_path: Path) -> None:
    variants: dict[str, dict[str, Any]] = {"plain": {}, "docs": {"docs": DOCS, "cors_origins": [WEB_ORIGIN]}}
    for name, options in variants.items():
        path = envoy_config.write(local_config(tmp_path, **options), tmp_path / f"{name}.json")
        result = infra.validate_envoy_config(path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK" in result.stdout + result.stderr


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    # The validation step can fail: a misspelt field is refused.
    config = local_config(tmp_path)
    config["static_resources"]["clusters"][0]["conect_timeout"] = "1s"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(config))
    assert infra.validate_envoy_config(path).returncode != 0


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    return found


def test_every_service_is_routed_and_transcoded(tmp_path: Path) -> None:
    upstreams = local_upstreams(StackSettings())
    hcm = connection_manager(local_config(tmp_path, "/x.binpb"))
    transcoder = next(f for f in hcm["http_filters"] if "transcoder" in f["name"])["typed_config"]
    prefixes = [r["match"].get("prefix") for r in hcm["route_config"]["virtual_hosts"][0]["routes"]]
    for upstream in upstreams:
        for service in upstream.services:
            assert service in transcoder["services"]
            assert f"/{service}/" in prefixes


def test_every_rpc_has_a_route_with_its_deadline(tmp_path: Path) -> None:
    limits = envoy_config.EdgeLimits(route_timeout_seconds=7, stream_timeout_seconds=70)
    by_path = {r["match"]["path"]: r for r in routes(local_config(tmp_path, limits=limits)) if "path" in r["match"]}
    for grpc_path, _rule in rule_table():
        method = descriptor_pool.Default().FindMethodByName(grpc_path.strip("/").replace("/", "."))
        route = by_path[grpc_path]
        checks = route["metadata"]["filter_metadata"]["mesh.call_checks"]
        streaming = (method.client_streaming or method.server_streaming) and not grpc_path.startswith(
            envoy_config.LLM_ROUTES
        )
        assert checks["deadline_ms"] == (70_000 if streaming else 7_000), grpc_path
        # Envoy's own limit is a backstop a moment after the service's deadline.
        assert route["route"]["timeout"] == ("71s" if streaming else "8s"), grpc_path
        assert checks["check_frames"] is not method.client_streaming
        assert {"header": {"key": "cache-control", "value": "no-store"}} in [
            {"header": h["header"]} for h in route["response_headers_to_add"]
        ]
    assert by_path["/mesh.analytics.v1.AnalyticsService/WatchResults"]["route"]["timeout"] == "71s"
    # An LLM answer streams, but it is one answer: the route limit.
    assert by_path["/mesh.llm.v1.LlmService/StreamComplete"]["route"]["timeout"] == "8s"


def test_sign_in_and_the_llm_routes_are_rate_limited(tmp_path: Path) -> None:
    limited = {
        r["match"]["path"]
        for r in routes(local_config(tmp_path))
        if "envoy.filters.http.local_ratelimit" in r.get("typed_per_filter_config", {})
    }
    assert {
        "/mesh.auth.v1.AuthService/Login",
        "/mesh.auth.v1.AuthService/ExchangeApiKey",
        "/mesh.llm.v1.LlmService/Complete",
        "/mesh.llm.v1.LlmService/StreamComplete",
        "/mesh.analytics.v1.AnalyticsService/AskAboutResult",
    } <= limited
    assert "/mesh.analytics.v1.AnalyticsService/ListDatasets" not in limited


@pytest.mark.parametrize(
    ("template", "matching", "other"),
    [
        ("/v1/datasets", "/v1/datasets", "/v1/datasets/x"),
        ("/v1/datasets/{id}", "/v1/datasets/0a1b", "/v1/datasets:ingest"),
        ("/v1/results/{id}", "/v1/results/abc", "/v1/results/abc:ask"),
        ("/v1/results/{result_id}:ask", "/v1/results/abc:ask", "/v1/results/abc"),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/a/books/b", "/v1/shelves/a"),
    ],
)
def test_rest_path_templates_become_regexes(template: str, matching: str, other: str) -> None:
    regex = re.compile(envoy_config.path_regex(template))
    assert regex.fullmatch(matching)
    assert not regex.fullmatch(other)


def test_only_public_rpcs_skip_the_token_check(tmp_path: Path) -> None:
    hcm = connection_manager(local_config(tmp_path))
    jwt_filter = next(f for f in hcm["http_filters"] if "jwt_authn" in f["name"])["typed_config"]
    rules = jwt_filter["rules"]
    open_paths = {r["match"]["path"] for r in rules if "requires" not in r}
    assert open_paths == {
        "/mesh.auth.v1.AuthService/Login",
        "/v1/auth:login",
        "/mesh.auth.v1.AuthService/Refresh",
        "/v1/auth:refresh",
        "/mesh.auth.v1.AuthService/ExchangeApiKey",
        "/v1/auth:exchangeApiKey",
        "/mesh.notify.v1.NotifyService/CheckUnsubscribe",
        "/mesh.notify.v1.NotifyService/Unsubscribe",
        "/v1/unsubscribe",
    }
    assert rules[-1] == {"match": {"prefix": "/"}, "requires": {"provider_name": "mesh"}}


def test_docs_are_routed_open_and_untranscoded(tmp_path: Path) -> None:
    hcm = connection_manager(local_config(tmp_path, docs=DOCS))
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    docs = next(r for r in routes if r["match"].get("prefix") == "/docs")
    assert docs["route"]["cluster"] == "docs"
    assert routes.index(docs) < len(routes) - 1  # before the catch-all 404
    assert docs["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    jwt_rules = next(f for f in hcm["http_filters"] if "jwt_authn" in f["name"])["typed_config"]["rules"]
    assert {"match": {"prefix": "/docs"}} in jwt_rules[:-1]
    # Without a docs upstream nothing is open under /docs.
    plain = connection_manager(local_config(tmp_path))
    assert not any(r["match"].get("prefix") == "/docs" for r in plain["route_config"]["virtual_hosts"][0]["routes"])


def test_grpc_web_runs_before_the_transcoder_and_cors_first(tmp_path: Path) -> None:
    hcm = connection_manager(local_config(tmp_path, cors_origins=[WEB_ORIGIN]))
    names = [f["name"] for f in hcm["http_filters"]]
    assert names.index("envoy.filters.http.cors") < names.index("envoy.filters.http.jwt_authn")
    assert names.index("envoy.filters.http.grpc_web") < names.index("envoy.filters.http.grpc_json_transcoder")
    # ... and before the token check, so a refused grpc-web call gets a grpc-status.
    assert names.index("envoy.filters.http.grpc_web") < names.index("envoy.filters.http.jwt_authn")
    assert names[-1] == "envoy.filters.http.router"
    policy = hcm["route_config"]["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert policy["allow_origin_string_match"] == [{"exact": WEB_ORIGIN}]
    assert "grpc-status" in policy["expose_headers"] and "authorization" in policy["allow_headers"]


@pytest.mark.parametrize(
    ("sampler", "ratio", "percent"),
    [
        ("parentbased_traceidratio", "0.1", 10.0),
        ("traceidratio", "0.25", 25.0),
        ("parentbased_always_on", "", 100.0),
        ("parentbased_always_off", "", 0.0),
    ],
)
def test_envoy_samples_new_traces_at_the_services_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampler: str, ratio: str, percent: float
) -> None:
    # One setting end to end: the stack renders OTEL_TRACES_SAMPLER(_ARG) into
    # Envoy's random_sampling, so REST calls are sampled at the services' ratio.
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:14318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    if ratio:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    stack = Stack(StackSettings(state_dir=tmp_path / "stack"), console=None)
    export = stack.envoy_trace_export()
    assert export is not None
    config = local_config(tmp_path, trace_export=export)
    assert connection_manager(config)["tracing"]["random_sampling"] == {"value": percent}
    path = envoy_config.write(config, tmp_path / "traced.json")
    result = infra.validate_envoy_config(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_sampling_ratio_stops_the_stack_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:14318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.5")
    stack = Stack(StackSettings(state_dir=tmp_path / "stack"), console=None)
    with pytest.raises(StackError, match="OTEL_TRACES_SAMPLER_ARG"):
        stack.envoy_trace_export()
