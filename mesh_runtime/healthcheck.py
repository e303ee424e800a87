"""Container healthcheck: exit 0 when a server says it is healthy.

    python -m mesh_runtime.healthcheck HOST:PORT [SERVICE] [--timeout SECONDS]
    python -m mesh_runtime.healthcheck http://HOST:PORT/PATH [--timeout SECONDS]

A ``HOST:PORT`` is asked the standard gRPC health service (``grpc.health.v1``)
about ``SERVICE`` (default ``""``: the whole server); the answer must be
SERVING. An ``http://`` URL (the web app, the docs portal) must answer 200.
Otherwise the exit status is 1 and one line on stderr says why, which is what
``docker inspect`` shows as the healthcheck's output.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT_SECONDS = 3.0


def grpc_problem(address: str, service: str = "", timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str | None:
    """Why the gRPC server at ``address`` is not serving ``service``, or None if it is."""
    label = f"{address} {service!r}" if service else address
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.NOT_FOUND:
                return f"{label}: the server does not know this service"
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"{label}: no health answer within {timeout:g} s"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            name = code.name if code is not None else "error"
            return f"{label}: {name}: {(details or '').splitlines()[0] if details else 'no details'}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{label}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def http_problem(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str | None:
    """Why ``url`` does not answer 200, or None if it does."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) checked by caller
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url}: not reachable ({reason})"
    return None if status == 200 else f"{url}: HTTP {status}"


def problem(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT_SECONDS) -> str | None:
    """Why ``target`` (HOST:PORT or an http(s) URL) is not healthy, or None if it is."""
    if target.startswith(("http://", "https://")):
        return http_problem(target, timeout)
    return grpc_problem(target, service, timeout)


def main(argv: list[str] | None = None) -> int:
    """Check once; 0 when healthy, 1 (and one line on stderr) otherwise, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m mesh_runtime.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT of a gRPC server, or an http(s):// URL")
    parser.add_argument("service", nargs="?", default="", help="gRPC service name to ask about (default: the server)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait (default 3)")
    args = parser.parse_args(argv)
    is_url = args.target.startswith(("http://", "https://"))
    if is_url and args.service:
        parser.error("SERVICE applies to gRPC targets only")
    if not is_url and ":" not in args.target:
        parser.error(f"expected HOST:PORT or an http(s):// URL, got {args.target!r}")
    if args.timeout <= 0:
        parser.error("--timeout must be greater than 0")
    reason = problem(args.target, args.service, args.timeout)
    if reason is not None:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
