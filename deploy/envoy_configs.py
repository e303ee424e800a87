"""Write Envoy's configs for docker compose and Kubernetes from gateway/envoy_config.py.

    python deploy/envoy_configs.py          # rewrite them
    python deploy/envoy_configs.py --check  # exit 1 if any is stale

The same ``render(...)`` as the local stack, with the services' container
names as upstreams (Docker's and Kubernetes' DNS return every replica, and
Envoy's STRICT_DNS clusters balance across them) and the paths the files are
mounted at in the Envoy container:

- deploy/compose/envoy.json: plain HTTP/2 and HTTP/1.1 on :8080 (development);
- deploy/compose/envoy.prod.json: the same behind TLS on :8443, with the
  certificate and key mounted from deploy/compose/certs/ (the production override);

Kubernetes runs deploy/docker/envoy.Dockerfile: the official image with
envoy.json and the descriptor set baked in (TLS ends at the cluster's load
balancer or ingress).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "gen" / "python"))

from gateway import envoy_config  # noqa: E402
from mesh_runtime import telemetry  # noqa: E402

COMPOSE_DIR = ROOT / "deploy" / "compose"

# Where files are mounted inside the Envoy container (compose and Kubernetes alike).
DESCRIPTOR_IN_CONTAINER = "/etc/envoy/descriptor.binpb"
JWKS_IN_CONTAINER = "/run/mesh-auth/jwks.json"
TLS_CERT_IN_CONTAINER = "/etc/envoy/tls/tls.crt"
TLS_KEY_IN_CONTAINER = "/etc/envoy/tls/tls.key"
LISTEN_PORT = 8080
TLS_LISTEN_PORT = 8443
ADMIN_PORT = 9901
# Envoy's /stats/prometheus for Prometheus, on the same port as every service's /metrics.
STATS_PORT = 9464

# Each Envoy cluster's service name (compose service = Kubernetes Service) and port.
SERVICE_ADDRESSES = {
    "analytics": ("analytics", 50051),
    "llm": ("llm", 50052),
    "notify": ("notify", 50053),
}
DOCS_ADDRESS = ("docs", 8090)
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"


def compose_sampling_percent(path: Path = COMPOSE_ENV_EXAMPLE) -> float:
    """The services' sampling ratio in percent, as deploy/compose.env.example
    sets it (OTEL_TRACES_SAMPLER / _ARG): Envoy samples new traces at the same
    ratio (README, "See inside")."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().startswith("OTEL_TRACES_SAMPLER"):
            env[name.strip()] = value.strip()
    return telemetry.sampling_percent(env)


# Envoy's spans go to the OpenTelemetry Collector (compose service and Kubernetes Service), OTLP/HTTP.
TRACE_EXPORT = envoy_config.TraceExport("otel-collector", 4318, sampling_percent=compose_sampling_percent())
# Pages that may call the API from the browser (grpc-web, REST): the web app as
# compose publishes it, and in production its public origin (--web-origin).
COMPOSE_WEB_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")
DEFAULT_PROD_WEB_ORIGINS = ("https://localhost",)


def container_upstreams() -> list[envoy_config.Upstream]:
    """The services' upstreams (the same clusters as the local stack), at container addresses."""
    try:
        return envoy_config.upstreams(SERVICE_ADDRESSES)
    except ValueError as exc:
        raise SystemExit(f"{exc}: add it to SERVICE_ADDRESSES") from None


def plain_config(web_origins: tuple[str, ...] = COMPOSE_WEB_ORIGINS) -> dict[str, Any]:
    """Envoy for compose and Kubernetes: no TLS, admin on loopback only."""
    return envoy_config.render(
        listen_address="0.0.0.0",
        listen_port=LISTEN_PORT,
        admin_address="127.0.0.1",
        admin_port=ADMIN_PORT,
        descriptor_path=DESCRIPTOR_IN_CONTAINER,
        upstreams=container_upstreams(),
        jwks_path=JWKS_IN_CONTAINER,
        docs=envoy_config.HttpUpstream("docs", *DOCS_ADDRESS),
        cors_origins=web_origins,
        trace_export=TRACE_EXPORT,
        stats_port=STATS_PORT,
    )


def tls_config(web_origins: tuple[str, ...] = DEFAULT_PROD_WEB_ORIGINS) -> dict[str, Any]:
    """The production edge: the same routes and filters behind TLS (HTTP/2 via ALPN for gRPC)."""
    config = copy.deepcopy(plain_config(web_origins))
    # The edge listener; the stats listener stays plain HTTP, inside the network (not published).
    (listener,) = [lis for lis in config["static_resources"]["listeners"] if lis["name"] == "mesh"]
    listener["address"]["socket_address"]["port_value"] = TLS_LISTEN_PORT
    for chain in listener["filter_chains"]:
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "alpn_protocols": ["h2", "http/1.1"],
                    "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": TLS_CERT_IN_CONTAINER},
                            "private_key": {"filename": TLS_KEY_IN_CONTAINER},
                        }
                    ],
                },
            },
        }
    return config


def _json(config: dict[str, Any]) -> bytes:
    return (json.dumps(config, indent=2) + "\n").encode()


def expected(prod_web_origins: tuple[str, ...] = DEFAULT_PROD_WEB_ORIGINS) -> dict[Path, bytes]:
    """Every generated file and the bytes it should hold."""
    return {
        COMPOSE_DIR / "envoy.json": _json(plain_config()),
        COMPOSE_DIR / "envoy.prod.json": _json(tls_config(prod_web_origins)),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the configs, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    parser.add_argument(
        "--web-origin",
        action="append",
        help="public origin of the web app for the production config, e.g. https://analytics.example.com "
        "(repeatable; the committed file has https://localhost)",
    )
    args = parser.parse_args(argv)
    files = expected(tuple(args.web_origin) if args.web_origin else DEFAULT_PROD_WEB_ORIGINS)
    stale = [path for path, data in files.items() if not path.exists() or path.read_bytes() != data]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python deploy/envoy_configs.py", file=sys.stderr)
        return 1 if stale else 0
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
