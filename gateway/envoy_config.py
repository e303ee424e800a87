"""Render Envoy's configuration from one source, for the local stack and compose.

Envoy listens for both gRPC (passed through to the owning service) and REST
(transcoded to gRPC with the descriptor set built by buf, using each RPC's
``google.api.http`` binding). Errors come back as JSON ``google.rpc.Status``
bodies: from the services through ``convert_grpc_status``, and from Envoy
itself (unknown route, unknown query parameter, service down, body too large,
malformed request) through ``local_reply_config``.

Every RPC has a route of its own, generated from the descriptors, so a new RPC
gets the same treatment without changes here:

- a time limit that reaches the service as its gRPC deadline (``grpc-timeout``:
  the caller's, cut to the limit; REST calls, which cannot set one, get the
  limit): the route timeout for unary RPCs and LLM answers, an explicit longer
  one for streams. The service ends a call at its deadline (a whole
  DEADLINE_EXCEEDED answer, even mid-stream); Envoy's own timer, a second
  later, only stops a service that does not;
- an RPC that takes one request message gets its body checked before it
  reaches the service: at most the services' message limit (413 / INVALID_ARGUMENT
  naming it, instead of the service's RESOURCE_EXHAUSTED, which REST reads as
  429), and whole gRPC frames (a truncated one is INVALID_ARGUMENT at once, not a
  call the server waits on forever);
- sign-in and the LLM routes have a token bucket per client (``local_ratelimit``):
  429 with ``Retry-After`` when it is empty;
- responses are ``Cache-Control: no-store`` (they carry tokens and private data).

A REST path called with a method it does not have is answered 405 with
``Allow``. A service that is down or dies mid-call is a 503 with
``Retry-After`` (UNAVAILABLE to gRPC callers), every answer carries
``X-Content-Type-Options: nosniff``, a service's 401 gets the same Bearer
challenge as Envoy's own, and the access log keeps paths without their query
strings (which carry the unsubscribe link's token).

Browsers call gRPC directly through grpc-web (the ``grpc_web`` filter turns it
into gRPC before the transcoder sees it), from the origins allowed by the CORS
policy. With a docs upstream, ``/docs`` goes to the API docs portal,
open to everyone (no token, no transcoding).

With an OTLP collector (``TraceExport``), Envoy joins the callers' traces: its
OpenTelemetry tracer makes a span per request, child of the caller's
``traceparent`` (or a new trace's root), exports it over OTLP/HTTP, and sends
the services a ``traceparent`` naming its span, REST calls through the
transcoder included.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mesh_runtime.contracts import SERVICES_BY_PROCESS

_TYPE_PREFIX = "type.googleapis.com/"

# google.rpc.Code for the HTTP statuses Envoy itself answers with; any other
# error status Envoy answers is UNKNOWN (2), in the same JSON shape.
_LOCAL_REPLY_CODES = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    405: 12,
    408: 4,
    413: 3,
    429: 8,
    431: 3,
    501: 12,
    502: 14,
    503: 14,
    504: 4,
}
_UNKNOWN = 2

# The largest message the services accept (mesh_runtime.server.MAX_MESSAGE_BYTES).
MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Upstream:
    """A service behind Envoy: its cluster name, gRPC services and address."""

    cluster: str
    services: Sequence[str]
    host: str
    port: int


@dataclass(frozen=True)
class HttpUpstream:
    """A plain HTTP/1.1 server behind Envoy (the API docs portal)."""

    cluster: str
    host: str
    port: int


def upstreams(addresses: Mapping[str, tuple[str, int]]) -> list[Upstream]:
    """One upstream per service process (its gRPC services from the contracts),
    at ``addresses[process]`` = (host, port); every process needs an address."""
    missing = sorted(set(SERVICES_BY_PROCESS) - set(addresses))
    if missing:
        raise ValueError(f"no address for the Envoy cluster(s) {', '.join(missing)}")
    return [
        Upstream(process, services, *addresses[process]) for process, services in SERVICES_BY_PROCESS.items()
    ]


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per client: ``burst`` calls at once, then ``per_minute``.

    ``key``: who a bucket belongs to, the client's address (routes callable
    without a token) or the token's subject.
    """

    burst: int
    per_minute: int
    key: Literal["client_address", "subject"]

    @property
    def refill_seconds(self) -> int:
        """Seconds between two tokens (what ``Retry-After`` says)."""
        return max(1, math.ceil(60 / self.per_minute))


# RPCs with a token bucket in front of them, by the start of their gRPC path.
SIGN_IN_ROUTES = ("/mesh.auth.v1.AuthService/Login", "/mesh.auth.v1.AuthService/ExchangeApiKey")
LLM_ROUTES = ("/mesh.llm.v1.LlmService/", "/mesh.analytics.v1.AnalyticsService/AskAboutResult")


@dataclass(frozen=True)
class EdgeLimits:
    """How long calls may take, how large requests may be, how often sign-in
    and the LLM may be called, and when a client should retry."""

    route_timeout_seconds: int = 60
    # Streams (WatchResults, IngestPoints, ...; not the LLM's answers): a limit of their own.
    stream_timeout_seconds: int = 3600
    max_request_bytes: int = MAX_REQUEST_BYTES
    sign_in: RateLimit = field(default_factory=lambda: RateLimit(burst=30, per_minute=60, key="client_address"))
    llm: RateLimit = field(default_factory=lambda: RateLimit(burst=30, per_minute=30, key="subject"))
    # Retry-After of a 503 (a service down or restarting).
    retry_after_seconds: int = 1
    # Proxies in front of Envoy whose X-Forwarded-For entries are trusted for the client address.
    trusted_proxy_hops: int = 0


@dataclass(frozen=True)
class TraceExport:
    """Where Envoy sends its spans: an OTLP/HTTP receiver at ``host``:``port``
    (``path`` is its traces path), and the service name the spans carry."""

    host: str
    port: int
    path: str = "/v1/traces"
    service_name: str = "envoy"
    # The share of new traces (requests without a sampled traceparent) Envoy
    # keeps, in percent: the services' sampling ratio (``sampling_percent``).
    sampling_percent: float = 100.0

    @classmethod
    def from_url(cls, url: str, service_name: str = "envoy", sampling_percent: float = 100.0) -> TraceExport:
        """From an OTLP/HTTP traces URL (``http://host:port/v1/traces``); a URL
        without a path gets ``/v1/traces``, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
        parsed = urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"expected an http://host:port OTLP endpoint, got {url!r}")
        path = parsed.path.rstrip("/") or "/v1/traces"
        return cls(parsed.hostname, parsed.port or 4318, path, service_name, sampling_percent)


_TRACE_CLUSTER = "otlp_collector"


def _admin_cluster(address: str, port: int) -> dict[str, Any]:
    cluster = _cluster(HttpUpstream(_ADMIN_CLUSTER, "127.0.0.1" if address == "0.0.0.0" else address, port))
    cluster["type"] = "STATIC"
    return cluster


def _trace_cluster(export: TraceExport) -> dict[str, Any]:
    return _cluster(HttpUpstream(_TRACE_CLUSTER, export.host, export.port))


def _tracing(export: TraceExport) -> dict[str, Any]:
    return {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": _TYPE_PREFIX + "envoy.config.trace.v3.OpenTelemetryConfig",
                "http_service": {
                    "http_uri": {
                        "uri": f"http://{export.host}:{export.port}{export.path}",
                        "cluster": _TRACE_CLUSTER,
                        "timeout": "2s",
                    }
                },
                "service_name": export.service_name,
            },
        },
        # The span's name: the method and the path without its query (query strings
        # carry secrets, as in the access log; the span's http.url tag keeps the
        # whole URL: the compose and Kubernetes Collector drops the query from it).
        "operation": "%REQ(:METHOD)% %PATH(NQ:ORIG_OR_PATH)%",
        # Sampling follows the caller's traceparent when it has one; without one,
        # Envoy keeps this share of requests, the services' ratio
        # (OTEL_TRACES_SAMPLER / _ARG, ``sampling_percent``), and the services'
        # samplers, parent-based, follow Envoy's decision: one setting end to end.
        "random_sampling": {"value": export.sampling_percent},
    }


_ADMIN_CLUSTER = "envoy_admin"
STATS_PATH = "/stats/prometheus"


def _stats_listener(address: str, port: int) -> dict[str, Any]:
    """A listener serving only the admin's Prometheus stats: the admin itself
    (which can also stop Envoy) stays on loopback."""
    manager = {
        "@type": _TYPE_PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "stats",
        "route_config": {
            "name": "stats",
            "virtual_hosts": [
                {
                    "name": "stats",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"path": STATS_PATH}, "route": {"cluster": _ADMIN_CLUSTER}},
                        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                    ],
                }
            ],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": "stats",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }


DOCS_PREFIX = "/docs"

# What a grpc-web client in a browser sends and must be able to read back.
_CORS_ALLOW_HEADERS = "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout,x-request-id"
_CORS_EXPOSE_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin,x-request-id"

_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
_CALL_CHECKS = "mesh.call_checks"
_RATE_LIMIT = "envoy.filters.http.local_ratelimit"


def _cluster(upstream: Upstream | HttpUpstream) -> dict[str, Any]:
    http2 = {
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    }
    return {
        "name": upstream.cluster,
        "type": "STRICT_DNS",
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        **(http2 if isinstance(upstream, Upstream) else {}),
        "load_assignment": {
            "cluster_name": upstream.cluster,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": upstream.host,
                                        "port_value": upstream.port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _status_filter(op: str, http_status: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": op,
                "value": {"default_value": http_status, "runtime_key": f"mesh.local_reply.{op.lower()}.{http_status}"},
            }
        }
    }


def _json_body(grpc_code: int) -> dict[str, Any]:
    return {"json_format": {"code": grpc_code, "message": "%LOCAL_REPLY_BODY%"}, "content_type": "application/json"}


# A gRPC or grpc-web call, as opposed to REST (which the transcoder marks with
# the original path): its errors travel as grpc-status and grpc-message.
_GRPC_CALL = {
    "and_filter": {
        "filters": [
            {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"}}}},
            {
                "header_filter": {
                    "header": {"name": "x-envoy-original-path", "present_match": True, "invert_match": True}
                }
            },
        ]
    }
}


def _local_reply_mappers(limits: EdgeLimits) -> list[dict[str, Any]]:
    """Every error Envoy answers a REST call with is a JSON google.rpc.Status;
    a 503 says when to retry (gRPC too); a 413 names the limit."""
    mappers: list[dict[str, Any]] = [
        {
            "filter": {"and_filter": {"filters": [_status_filter("EQ", 503), _GRPC_CALL]}},
            "headers_to_add": [_header("retry-after", str(limits.retry_after_seconds))],
        },
        # Any other error of a gRPC call: as Envoy renders it (grpc-status, a plain grpc-message).
        {"filter": {"and_filter": {"filters": [_status_filter("GE", 400), _GRPC_CALL]}}},
    ]
    for http_status, grpc_code in _LOCAL_REPLY_CODES.items():
        mapper: dict[str, Any] = {
            "filter": _status_filter("EQ", http_status),
            "body_format_override": _json_body(grpc_code),
        }
        if http_status == 503:
            mapper["headers_to_add"] = [_header("retry-after", str(limits.retry_after_seconds))]
        if http_status == 413:
            mapper["body"] = {
                "inline_string": f"the request body is larger than the limit of {limits.max_request_bytes} bytes "
                f"({limits.max_request_bytes / 2**20:g} MiB)"
            }
        mappers.append(mapper)
    # Anything else (a codec error such as an unsupported Transfer-Encoding): the same JSON shape.
    mappers.append({"filter": _status_filter("GE", 400), "body_format_override": _json_body(_UNKNOWN)})
    return mappers


@dataclass(frozen=True)
class _Rpc:
    """One RPC of a routed service, as the descriptors describe it."""

    path: str  # /package.Service/Method
    cluster: str
    client_streaming: bool
    server_streaming: bool
    http_rules: tuple[tuple[str, str], ...]  # (HTTP method, path template) of each REST binding
    # A server stream of messages (not of google.api.HttpBody, which REST gets raw):
    # REST gets it as newline-delimited JSON.
    ndjson: bool = False


def _rpcs(upstreams: Sequence[Upstream]) -> Iterator[_Rpc]:
    """Every RPC of the upstreams' services, from the generated descriptors."""
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pool

    from mesh_runtime import contracts  # noqa: F401 - puts the mesh's descriptors in the default pool

    pool = descriptor_pool.Default()
    for upstream in upstreams:
        for service_name in upstream.services:
            service = pool.FindServiceByName(service_name)
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                yield _Rpc(
                    f"/{service.full_name}/{method.name}",
                    upstream.cluster,
                    method.client_streaming,
                    method.server_streaming,
                    tuple(_http_bindings(rule)),
                    method.server_streaming and method.output_type.full_name != "google.api.HttpBody",
                )


def _http_bindings(rule: Any) -> Iterator[tuple[str, str]]:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        yield rule.custom.kind.upper(), rule.custom.path
    elif pattern:
        yield pattern.upper(), getattr(rule, pattern)
    for extra in rule.additional_bindings:
        yield from _http_bindings(extra)


_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def path_regex(template: str) -> str:
    """An RE2 regex matching the URL paths of a google.api.http path template.

    A variable matches one segment without a ``:`` (so ``/v1/results/{id}``
    does not match ``/v1/results/x:ask``, another binding's custom verb)."""

    def segments(pattern: str) -> str:
        parts = []
        for segment in pattern.split("/"):
            parts.append({"*": "[^/:]+", "**": ".*"}.get(segment, re.escape(segment)))
        return "/".join(parts)

    out, last = [], 0
    for match in _TEMPLATE_VARIABLE.finditer(template):
        out.append(re.escape(template[last : match.start()]))
        out.append(segments(match.group(2) or "*"))
        last = match.end()
    out.append(re.escape(template[last:]))
    return "".join(out)


def _method_not_allowed_routes(rpcs: Sequence[_Rpc]) -> list[dict[str, Any]]:
    """For each REST path, a route answering the methods it does not have: 405 with Allow."""
    allowed: dict[str, list[str]] = {}
    templates: dict[str, str] = {}
    for rpc in rpcs:
        for method, template in rpc.http_rules:
            regex = path_regex(template)
            templates.setdefault(regex, template)
            if method not in allowed.setdefault(regex, []):
                allowed[regex].append(method)
    routes = []
    for regex, methods in allowed.items():
        listed = ", ".join(methods)
        routes.append(
            {
                "name": f"405 {templates[regex]}",
                "match": {
                    "safe_regex": {"regex": regex},
                    "headers": [
                        {
                            "name": ":method",
                            "string_match": {"safe_regex": {"regex": "|".join(methods)}},
                            "invert_match": True,
                        }
                    ],
                },
                "direct_response": {
                    "status": 405,
                    "body": {"inline_string": f"{templates[regex]} allows {listed} only"},
                },
                "response_headers_to_add": [_header("allow", listed)],
                # The transcoder would answer first (an unknown method is its 404).
                "typed_per_filter_config": {_TRANSCODER: _disabled()},
            }
        )
    return routes


def _disabled() -> dict[str, Any]:
    return {"@type": _TYPE_PREFIX + "envoy.config.route.v3.FilterConfig", "disabled": True}


def _rate_limit(name: str, limit: RateLimit) -> dict[str, Any]:
    """A local_ratelimit per-route config: one bucket per client address or token subject."""
    percent = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": f"mesh.{name}.rl"}
    action = (
        {"remote_address": {}}
        if limit.key == "client_address"
        else {"request_headers": {"header_name": "x-mesh-subject", "descriptor_key": "subject"}}
    )
    descriptor_key = "remote_address" if limit.key == "client_address" else "subject"
    bucket = {"max_tokens": limit.burst, "tokens_per_fill": 1, "fill_interval": f"{limit.refill_seconds}s"}
    return {
        "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": f"mesh_{name}",
        # The shared bucket only backs clients the per-client ones cannot tell apart.
        "token_bucket": {"max_tokens": limit.burst * 100, "tokens_per_fill": 100, "fill_interval": "1s"},
        "filter_enabled": percent,
        "filter_enforced": percent,
        "descriptors": [{"entries": [{"key": descriptor_key}], "token_bucket": bucket}],
        "rate_limits": [{"actions": [action]}],
        "always_consume_default_token_bucket": False,
        "max_dynamic_descriptors": 10_000,
        "response_headers_to_add": [_header("retry-after", str(limit.refill_seconds))],
    }


# Seconds Envoy waits past a call's deadline before it ends the call itself.
_BACKSTOP_SECONDS = 1


def _rpc_route(rpc: _Rpc, limits: EdgeLimits) -> dict[str, Any]:
    """The route of one RPC (gRPC path; REST calls reach it once transcoded)."""
    streaming = rpc.client_streaming or rpc.server_streaming
    # An LLM answer is streamed, but it is one answer: the route limit, not the streams' one.
    long_stream = streaming and not rpc.path.startswith(LLM_ROUTES)
    seconds = limits.stream_timeout_seconds if long_stream else limits.route_timeout_seconds
    per_filter: dict[str, Any] = {
        _CALL_CHECKS: {"@type": _TYPE_PREFIX + "envoy.extensions.filters.http.lua.v3.LuaPerRoute", "name": "call"}
    }
    if rpc.path.startswith(SIGN_IN_ROUTES):
        per_filter[_RATE_LIMIT] = _rate_limit("sign_in", limits.sign_in)
    elif rpc.path.startswith(LLM_ROUTES):
        per_filter[_RATE_LIMIT] = _rate_limit("llm", limits.llm)
    # The service's deadline ends the call (it answers DEADLINE_EXCEEDED, a whole
    # answer, even mid-stream); Envoy's own limit, a moment later, only stops a
    # service that does not.
    backstop = f"{seconds + _BACKSTOP_SECONDS}s"
    return {
        "name": rpc.path,
        "match": {"path": rpc.path},
        "route": {
            "cluster": rpc.cluster,
            # (No max_stream_duration: Envoy would write it into grpc-timeout over the deadline.)
            "timeout": backstop,
            **({"idle_timeout": backstop} if streaming else {}),
        },
        "metadata": {
            "filter_metadata": {
                _CALL_CHECKS: {
                    "deadline_ms": seconds * 1000,
                    # An RPC that takes one message: its body is checked whole.
                    "check_frames": not rpc.client_streaming,
                    # REST answers it as newline-delimited JSON (the transcoder's print option):
                    # typed application/x-ndjson by the edge filter on the way out.
                    **({"ndjson": True} if rpc.ndjson else {}),
                }
            }
        },
        "response_headers_to_add": [_header("cache-control", "no-store")],
        # A request message is buffered whole (frame check): a little past the services' limit, so
        # the check can say which limit a body broke; beyond that Envoy answers 413 itself.
        "request_body_buffer_limit": limits.max_request_bytes + 2**20,
        "typed_per_filter_config": per_filter,
    }


def public_routes() -> list[str]:
    """Paths callable without a token: the gRPC path and the REST path of every
    RPC whose access rule is public (from the protos)."""
    from google.api import annotations_pb2
    from google.protobuf import descriptor_pool

    from mesh_runtime.auth import rule_table

    paths: list[str] = []
    for grpc_path, rule in rule_table():
        if rule is None or not rule.public:
            continue
        method = descriptor_pool.Default().FindMethodByName(grpc_path.strip("/").replace("/", "."))
        http = method.GetOptions().Extensions[annotations_pb2.http]
        pattern = http.WhichOneof("pattern")
        paths += [grpc_path, *([getattr(http, pattern)] if pattern and pattern != "custom" else [])]
    return paths


def _jwt_authn(jwks_path: str, issuer: str, audience: str, open_prefixes: Sequence[str] = ()) -> dict[str, Any]:
    """Checks access tokens at the edge; services check them again."""
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "mesh": {
                    "issuer": issuer,
                    "audiences": [audience],
                    "local_jwks": {"filename": jwks_path},
                    # Services verify the same token again (defence in depth).
                    "forward": True,
                    "claim_to_headers": [
                        {"header_name": "x-mesh-subject", "claim_name": "sub"},
                        {"header_name": "x-mesh-role", "claim_name": "role"},
                    ],
                }
            },
            "rules": [
                *({"match": {"path": path}} for path in public_routes()),
                *({"match": {"prefix": prefix}} for prefix in open_prefixes),
                {"match": {"prefix": "/"}, "requires": {"provider_name": "mesh"}},
            ],
        },
    }


# Requests: keeps pseudo-headers (":path") and names gRPC metadata allows; drops
# the rest. Responses: a 401 from a service (through the transcoder) gets the
# Bearer challenge Envoy's own 401s carry; a REST server stream (marked by the
# call filter, which sees its route) is typed application/x-ndjson.
_EDGE_LUA = """
function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local drop = {}
  for key, _ in pairs(headers) do
    if string.sub(key, 1, 1) ~= ":" and not string.match(key, "^[0-9a-z_.%-]+$") then
      table.insert(drop, key)
    end
  end
  for _, key in ipairs(drop) do
    headers:remove(key)
  end
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  if headers:get(":status") == "401" and headers:get("www-authenticate") == nil then
    headers:add("www-authenticate", 'Bearer realm="REALM"')
  end
  local mesh = response_handle:streamInfo():dynamicMetadata():get("mesh")
  if mesh ~= nil and mesh["ndjson"] and headers:get(":status") == "200"
      and headers:get("content-type") == "application/json" then
    headers:replace("content-type", "application/x-ndjson")
  end
end
"""

# Every call, on its RPC's route (gRPC, grpc-web, and REST once transcoded):
# - its deadline (grpc-timeout) is the caller's, cut to the route's limit; REST
#   calls, which cannot set one, get the limit;
# - the body of an RPC that takes one message is at most LIMIT bytes (the
#   services' limit: REST gets a 413 naming it, gRPC INVALID_ARGUMENT) and
#   whole frames (1 flag byte, 4 length bytes, the message): the server would
#   wait forever for the rest of a truncated one.
_CALL_LUA = """
local UNIT_MS = {H = 3600000, M = 60000, S = 1000, m = 1, u = 0.001, n = 0.000001}

local function cut_deadline(headers, limit_ms)
  local given = headers:get("grpc-timeout")
  if given ~= nil then
    local amount, unit = string.match(given, "^(%d+)([HMSmun])$")
    if amount ~= nil and tonumber(amount) * UNIT_MS[unit] <= limit_ms then
      return
    end
  end
  headers:replace("grpc-timeout", string.format("%dm", limit_ms))
end

local function refuse(request_handle, http_status, problem)
  if request_handle:headers():get("x-envoy-original-path") ~= nil then
    request_handle:respond(
      {[":status"] = http_status, ["content-type"] = "application/json"},
      string.format('{"code":3,"message":"%s"}', problem))
  else
    request_handle:respond(
      {[":status"] = "200", ["content-type"] = "application/grpc", ["grpc-status"] = "3",
       ["grpc-message"] = problem},
      "")
  end
end

local function check_frames(request_handle)
  local body = request_handle:body()
  if body == nil then
    return
  end
  local size = body:length()
  if size > LIMIT + 5 then
    refuse(request_handle, "413", "the request body is larger than the limit of LIMIT bytes (MIB MiB)")
    return
  end
  local offset = 0
  while offset < size do
    if size - offset < 5 then
      refuse(request_handle, "400", "the request ends inside a gRPC frame header")
      return
    end
    local b = {string.byte(body:getBytes(offset, 5), 1, 5)}
    local length = ((b[2] * 256 + b[3]) * 256 + b[4]) * 256 + b[5]
    if size - offset - 5 < length then
      refuse(request_handle, "400", "the request ends inside a gRPC message (a truncated frame)")
      return
    end
    offset = offset + 5 + length
  end
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local content_type = headers:get("content-type") or ""
  if string.sub(content_type, 1, 16) ~= "application/grpc" then
    return
  end
  local route = request_handle:metadata()
  local limit_ms = route:get("deadline_ms")
  if limit_ms ~= nil then
    cut_deadline(headers, limit_ms)
  end
  -- (Before check_frames: the headers cannot be used once the body was waited for.)
  if route:get("ndjson") and headers:get("x-envoy-original-path") ~= nil then
    request_handle:streamInfo():dynamicMetadata():set("mesh", "ndjson", true)
  end
  if route:get("check_frames") then
    check_frames(request_handle)
  end
end
"""


def _call_lua(limit: int) -> str:
    return _CALL_LUA.replace("LIMIT", str(limit)).replace("MIB", f"{limit / 2**20:g}")


def _lua(name: str, typed_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "typed_config": {"@type": _TYPE_PREFIX + "envoy.extensions.filters.http.lua.v3.Lua", **typed_config},
    }


_SECURITY_HEADERS = {
    "name": "envoy.filters.http.header_mutation",
    "typed_config": {
        "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        "mutations": {
            "response_mutations": [
                {"append": _header("x-content-type-options", "nosniff")},
            ]
        },
    },
}


def render(
    *,
    listen_address: str,
    listen_port: int,
    admin_address: str,
    admin_port: int,
    descriptor_path: str,
    upstreams: Sequence[Upstream],
    jwks_path: str,
    issuer: str = "analytics-mesh",
    audience: str = "analytics-mesh",
    limits: EdgeLimits | None = None,
    max_connections: int = 10_000,
    docs: HttpUpstream | None = None,
    cors_origins: Sequence[str] = (),
    trace_export: TraceExport | None = None,
    stats_port: int | None = None,
) -> dict[str, Any]:
    """The Envoy bootstrap config as a dict (Envoy reads it as JSON or YAML).

    ``limits``: time, size and rate limits (``EdgeLimits()`` by default).
    ``docs``: the API docs portal, routed under /docs without a token.
    ``cors_origins``: web origins whose pages may call the API (grpc-web, REST).
    ``trace_export``: where Envoy's spans go (no tracing when None).
    ``stats_port``: a listener on the listen address serving only the admin's
    ``/stats/prometheus`` (for a Prometheus elsewhere; the admin stays where it is).
    """
    limits = limits or EdgeLimits()
    rpcs = list(_rpcs(upstreams))
    routes: list[dict[str, Any]] = []
    if docs is not None:
        routes.append(
            {
                "match": {"prefix": DOCS_PREFIX},
                "route": {"cluster": docs.cluster, "timeout": f"{limits.route_timeout_seconds}s"},
                # Not an RPC: the transcoder would refuse it as an unknown method.
                "typed_per_filter_config": {_TRANSCODER: _disabled()},
            }
        )
    routes += _method_not_allowed_routes(rpcs)
    routes += [_rpc_route(rpc, limits) for rpc in rpcs]
    # A method the descriptors do not know yet: the service answers (UNIMPLEMENTED).
    routes += [
        {
            "match": {"prefix": f"/{service}/"},
            "route": {
                "cluster": upstream.cluster,
                "timeout": f"{limits.route_timeout_seconds}s",
            },
        }
        for upstream in upstreams
        for service in upstream.services
    ]
    routes.append(
        {
            "match": {"prefix": "/"},
            "direct_response": {
                "status": 404,
                "body": {"inline_string": "no route for this path; REST routes start with /v1/"},
            },
        }
    )
    transcoder = {
        "name": _TRANSCODER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": descriptor_path,
            "services": [s for u in upstreams for s in u.services],
            "convert_grpc_status": True,
            # requests, browsers' URLSearchParams and curl --data-urlencode send a space as "+".
            "query_param_unescape_plus": True,
            "max_request_body_size": limits.max_request_bytes,
            # A unary answer is held whole while it becomes JSON (a page of points):
            # up to what the services send.
            "max_response_body_size": MAX_REQUEST_BYTES,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
                # Server streams (WatchResults, AskAboutResult, StreamComplete) as
                # newline-delimited JSON: each message is one line, sent as it arrives,
                # instead of one JSON array that a client can only parse once it closes.
                "stream_newline_delimited": True,
            },
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
            },
        },
    }
    connection_manager = {
        "@type": _TYPE_PREFIX + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "mesh",
        "codec_type": "AUTO",
        "generate_request_id": True,
        # A caller's own x-request-id is kept (it correlates the caller's logs with ours).
        "preserve_external_request_id": True,
        # The edge: x-forwarded-for gets the client's own address appended, the last entry,
        # which the services trust (AUTH_TRUSTED_PROXIES) to throttle sign-ins; the rate
        # limits here key on it too (or on what trusted proxies in front say it is).
        "use_remote_address": True,
        "xff_num_trusted_hops": limits.trusted_proxy_hops,
        # A client has this long to send its request headers.
        "request_headers_timeout": "10s",
        "route_config": {
            "name": "mesh",
            "virtual_hosts": [
                {
                    "name": "mesh",
                    "domains": ["*"],
                    "routes": routes,
                    **({"typed_per_filter_config": _cors_policy(cors_origins)} if cors_origins else {}),
                }
            ],
        },
        "http_filters": [
            # First, so its response headers go on every answer, Envoy's own included.
            _SECURITY_HEADERS,
            # HTTP allows header names gRPC metadata does not ("a~b"); the upstream gRPC
            # server would fail such a call with INTERNAL, so they are dropped here.
            _lua(
                "envoy.filters.http.lua",
                {"default_source_code": {"inline_string": _EDGE_LUA.replace("REALM", issuer)}},
            ),
            # CORS first: it answers preflight requests, which carry no token.
            {
                "name": "envoy.filters.http.cors",
                "typed_config": {"@type": _TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.Cors"},
            },
            # grpc-web becomes plain gRPC here: the token check then answers it in gRPC
            # (grpc-status, re-framed for grpc-web) and the transcoder passes it through.
            {
                "name": "envoy.filters.http.grpc_web",
                "typed_config": {"@type": _TYPE_PREFIX + "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"},
            },
            _jwt_authn(jwks_path, issuer, audience, [DOCS_PREFIX] if docs is not None else []),
            transcoder,
            # On every RPC's route: the call's deadline, and the body of an RPC that takes one message.
            _lua(_CALL_CHECKS, {"source_codes": {"call": {"inline_string": _call_lua(limits.max_request_bytes)}}}),
            # After the transcoder: REST calls are then on their RPC's route.
            {
                "name": _RATE_LIMIT,
                "typed_config": {
                    "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    "stat_prefix": "mesh_rate_limit",
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
        **({"tracing": _tracing(trace_export)} if trace_export is not None else {}),
        "local_reply_config": {"mappers": _local_reply_mappers(limits)},
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {
                        "text_format_source": {
                            # The path without its query: query strings carry secrets
                            # (the unsubscribe link's token) and personal data.
                            "inline_string": "%REQ(:METHOD)% %PATH(NQ:ORIG_OR_PATH)% "
                            "%RESPONSE_CODE% %GRPC_STATUS% %DURATION%ms request_id=%REQ(X-REQUEST-ID)% "
                            "trace_id=%TRACE_ID%\n"
                        }
                    },
                },
            }
        ],
    }
    return {
        # A bound on client connections keeps a flood from exhausting the process.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _TYPE_PREFIX
                        + "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": max_connections,
                    },
                }
            ]
        },
        "admin": {"address": {"socket_address": {"address": admin_address, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "mesh",
                    "address": {"socket_address": {"address": listen_address, "port_value": listen_port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ]
                        }
                    ],
                }
            ]
            + ([_stats_listener(listen_address, stats_port)] if stats_port is not None else []),
            "clusters": [_cluster(u) for u in upstreams]
            + ([_cluster(docs)] if docs is not None else [])
            + ([_trace_cluster(trace_export)] if trace_export is not None else [])
            + ([_admin_cluster(admin_address, admin_port)] if stats_port is not None else []),
        },
    }


def _cors_policy(origins: Sequence[str]) -> dict[str, Any]:
    return {
        "envoy.filters.http.cors": {
            "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allow_origin_string_match": [{"exact": origin} for origin in origins],
            "allow_methods": "GET,POST,PUT,PATCH,DELETE,OPTIONS",
            "allow_headers": _CORS_ALLOW_HEADERS,
            "expose_headers": _CORS_EXPOSE_HEADERS,
            "max_age": "600",
        }
    }


def write(config: dict[str, Any], path: Path) -> Path:
    """Write the config as JSON (valid YAML too) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
