"""Render Envoy's configuration from one source, for the local stack and compose.

Envoy listens for both gRPC (passed through to the owning service) and REST
(transcoded to gRPC with the descriptor set built by buf, using each RPC's
``google.api.http`` binding). Errors come back as JSON ``google.rpc.Status``
bodies: from the services through ``convert_grpc_status``, and from Envoy
itself (unknown route, unknown query parameter, service down) through
``local_reply_config``.

Browsers call gRPC directly through grpc-web (the ``grpc_web`` filter turns it
into gRPC before the transcoder sees it), from the origins allowed by the CORS
policy. With a docs upstream, ``/docs`` goes to the API docs portal, open to
everyone (no token, no transcoding).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_runtime.contracts import SERVICES_BY_PROCESS

_TYPE_PREFIX = "type.googleapis.com/"

# google.rpc.Code for the HTTP statuses Envoy itself answers with.
_LOCAL_REPLY_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 429: 8, 503: 14, 504: 4}


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


DOCS_PREFIX = "/docs"

# What a grpc-web client in a browser sends and must be able to read back.
_CORS_ALLOW_HEADERS = "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout,x-request-id"
_CORS_EXPOSE_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin,x-request-id"


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


def _local_reply_mapper(http_status: int, grpc_code: int) -> dict[str, Any]:
    return {
        "filter": {
            "status_code_filter": {
                "comparison": {
                    "op": "EQ",
                    "value": {"default_value": http_status, "runtime_key": f"mesh.local_reply.{http_status}"},
                }
            }
        },
        "body_format_override": {
            "json_format": {"code": grpc_code, "message": "%LOCAL_REPLY_BODY%"},
            "content_type": "application/json",
        },
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


# Keeps pseudo-headers (":path") and names gRPC metadata allows; drops the rest.
_DROP_NON_GRPC_HEADERS_LUA = """
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
"""

_DROP_NON_GRPC_HEADERS = {
    "name": "envoy.filters.http.lua",
    "typed_config": {
        "@type": _TYPE_PREFIX + "envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": _DROP_NON_GRPC_HEADERS_LUA},
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
    route_timeout_seconds: int = 60,
    max_connections: int = 10_000,
    docs: HttpUpstream | None = None,
    cors_origins: Sequence[str] = (),
) -> dict[str, Any]:
    """The Envoy bootstrap config as a dict (Envoy reads it as JSON or YAML).

    ``docs``: the API docs portal, routed under /docs without a token.
    ``cors_origins``: web origins whose pages may call the API (grpc-web, REST).
    """
    routes: list[dict[str, Any]] = [
        {
            "match": {"prefix": f"/{service}/"},
            "route": {
                "cluster": upstream.cluster,
                "timeout": f"{route_timeout_seconds}s",
                # Streams (WatchResults, StreamComplete) may outlive the route timeout.
                "max_stream_duration": {"grpc_timeout_header_max": "0s"},
            },
        }
        for upstream in upstreams
        for service in upstream.services
    ]
    if docs is not None:
        routes.append(
            {
                "match": {"prefix": DOCS_PREFIX},
                "route": {"cluster": docs.cluster, "timeout": f"{route_timeout_seconds}s"},
                # Not an RPC: the transcoder would refuse it as an unknown method.
                "typed_per_filter_config": {
                    "envoy.filters.http.grpc_json_transcoder": {
                        "@type": _TYPE_PREFIX + "envoy.config.route.v3.FilterConfig",
                        "disabled": True,
                    }
                },
            }
        )
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
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": descriptor_path,
            "services": [s for u in upstreams for s in u.services],
            "convert_grpc_status": True,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
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
        # The edge: x-forwarded-for gets the client's own address appended, the
        # last entry, which the services trust (AUTH_TRUSTED_PROXIES) to throttle sign-ins.
        "use_remote_address": True,
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
            # HTTP allows header names gRPC metadata does not ("a~b"); the upstream gRPC
            # server would fail such a call with INTERNAL, so they are dropped here.
            _DROP_NON_GRPC_HEADERS,
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
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
        "local_reply_config": {
            "mappers": [_local_reply_mapper(status, code) for status, code in _LOCAL_REPLY_CODES.items()]
        },
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {
                        "text_format_source": {
                            "inline_string": "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
                            "%RESPONSE_CODE% %GRPC_STATUS% %DURATION%ms request_id=%REQ(X-REQUEST-ID)%\n"
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
            ],
            "clusters": [_cluster(u) for u in upstreams] + ([_cluster(docs)] if docs is not None else []),
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
