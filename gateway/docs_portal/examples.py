"""grpcurl and curl examples for every RPC, from the OpenAPI document.

Each RPC gets a request with its required fields filled in with sample values
(ids as upper-case placeholders such as ``DATASET_ID``), the grpcurl command
that sends it through Envoy (with the descriptor set the portal serves, since
Envoy does not pass reflection through), and the curl command of its REST
binding. Commands read the token from ``$TOKEN``; public RPCs need none.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

PROTOSET = "mesh.protoset"
# Raw bodies (google.api.HttpBody) in examples: a file, its type, and its base64 over gRPC.
_RAW_FILE = "FILE"
_RAW_TYPE = "application/octet-stream"
_RAW_DATA = "BASE64_OF_FILE"
_SAMPLE_TIME = "2024-05-01T12:00:00Z"


@dataclass(frozen=True)
class MethodExample:
    """One RPC: what it does, who may call it, and how to call it."""

    grpc_method: str  # package.Service/Method
    name: str
    summary: str
    access: str  # "public" or the least role
    client_streaming: bool
    server_streaming: bool
    http_method: str
    http_path: str
    grpcurl: str
    curl: str


@dataclass(frozen=True)
class ServiceExamples:
    """A service of the mesh and its RPCs."""

    full_name: str
    description: str
    methods: list[MethodExample] = field(default_factory=list)


def placeholder(name: str) -> str:
    """``datasetId`` -> ``DATASET_ID``, ``dataset.id`` -> ``DATASET_ID``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.replace(".", "_")).upper()


class _Sampler:
    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema itself, behind references and wrappers; of alternatives
        (an enum's name or number, a list or one value), the first."""
        while True:
            if "$ref" in schema:
                schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
            elif "anyOf" in schema:
                schema = schema["anyOf"][0]
            elif "allOf" in schema and "properties" not in schema and "type" not in schema:
                schema = schema["allOf"][0]
            else:
                return schema

    def sample(self, schema: dict[str, Any], name: str, depth: int = 0) -> Any:
        """A value for ``schema``: required fields only, ids as placeholders."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if "enum" in schema:
            values = [v for v in schema["enum"] if not str(v).endswith("_UNSPECIFIED")]
            return (values or schema["enum"])[0]
        if kind == "object" and "properties" in schema:
            if depth > 4:
                return {}
            wanted = set(schema.get("required", []))
            return {
                prop: self.sample(spec, prop, depth + 1)
                for prop, spec in schema["properties"].items()
                if not spec.get("readOnly")
                and (prop in wanted or spec.get("minLength", 0) > 0 or spec.get("minItems", 0) > 0)
            }
        if kind == "object":
            return {}
        if kind == "array":
            return [self.sample(schema["items"], name, depth + 1) for _ in range(max(1, schema.get("minItems", 1)))]
        if kind == "boolean":
            return False
        if kind in ("integer", "number"):
            return schema.get("minimum", 0) + (1 if schema.get("exclusiveMinimum") else 0)
        if schema.get("format") == "date-time":
            return _SAMPLE_TIME
        if schema.get("format") in ("int64", "uint64"):
            return "1"
        if schema.get("format") == "uuid" or name.endswith(("Id", "id")):
            return placeholder(name)
        if schema.get("format") == "email" or name.endswith(("email", "Email")):
            return "ada@example.com"
        text = re.sub(r"[^a-z0-9]+", "-", placeholder(name).lower()).strip("-") or "example"
        return text.ljust(schema.get("minLength", 0), "x")


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``target[a][b]`` for ``a.b``, merging objects already there."""
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        for key, inner in value.items():
            _set_path(target[last], key, inner)
    else:
        target[last] = value


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def examples(document: dict[str, Any], rest_base_url: str, grpc_address: str) -> list[ServiceExamples]:
    """Examples for every operation of ``document``, grouped by service (its tags)."""
    sampler = _Sampler(document)
    plaintext = [] if rest_base_url.startswith("https://") else ["-plaintext"]
    services = {
        tag["x-grpc-service"]: ServiceExamples(tag["x-grpc-service"], tag.get("description", ""))
        for tag in document["tags"]
    }
    for path, item in document["paths"].items():
        for http_method, op in item.items():
            grpc_method = op["x-grpc-method"].lstrip("/")
            service_name = grpc_method.split("/")[0]
            request: dict[str, Any] = {}
            url_path = path
            query: dict[str, Any] = {}
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path":
                    value = sampler.sample(parameter["schema"], parameter["name"])
                    value = placeholder(parameter["name"]) if isinstance(value, str) else value
                    url_path = url_path.replace("{" + parameter["name"] + "}", str(value))
                    _set_path(request, parameter.get("x-grpc-field", parameter["name"]), value)
                elif parameter.get("required"):
                    value = sampler.sample(parameter["schema"], parameter["name"])
                    value = placeholder(parameter["name"]) if isinstance(value, str) else value
                    query[parameter["name"]] = value
                    _set_path(request, parameter["name"], value)
            body: Any = None
            raw_body = "requestBody" in op and "application/json" not in op["requestBody"]["content"]
            if raw_body:
                # A google.api.HttpBody: the file itself over REST, base64 in "data" over gRPC.
                _set_path(request, op.get("x-grpc-body", "body"), {"contentType": _RAW_TYPE, "data": _RAW_DATA})
            elif "requestBody" in op:
                body_schema = op["requestBody"]["content"]["application/json"]["schema"]
                body = sampler.sample(body_schema, "body")
                message = body[0] if isinstance(body, list) else body
                bound = op.get("x-grpc-body", "*")
                for key, value in message.items() if bound == "*" else [(bound, message)]:
                    _set_path(request, key, value)
            secured = bool(op.get("security"))
            auth = ["-H", "authorization: Bearer $TOKEN"] if secured else []
            grpcurl = [
                "grpcurl",
                *plaintext,
                "-protoset",
                PROTOSET,
                *auth,
                "-d",
                _json(request),
                grpc_address,
                grpc_method,
            ]
            url = rest_base_url + url_path + (f"?{urlencode(query)}" if query else "")
            # -N: print each line of a stream as it arrives.
            curl = ["curl", "-s", *(["-N"] if _response_type(op) == "ndjson" else [])]
            if http_method != "get":
                curl += ["-X", http_method.upper()]
            curl += [*auth, url]
            if body is not None:
                curl += ["-d", _json(body)]
            if raw_body:
                curl += ["-H", f"content-type: {_RAW_TYPE}", "--data-binary", f"@{_RAW_FILE}"]
            if _response_type(op) == "raw":
                curl += ["-o", _RAW_FILE]
            services.setdefault(service_name, ServiceExamples(service_name, "")).methods.append(
                MethodExample(
                    grpc_method=grpc_method,
                    name=grpc_method.split("/")[1],
                    summary=op.get("summary", ""),
                    access="public" if not secured else op.get("x-mesh-min-role", "signed in"),
                    client_streaming="requestBody" in op and _body_type(op) == "array",
                    server_streaming=_response_type(op) == "ndjson",
                    http_method=http_method.upper(),
                    http_path=path,
                    grpcurl=_shell(grpcurl),
                    curl=_shell(curl),
                )
            )
    for service in services.values():
        service.methods.sort(key=lambda m: m.name)
    return list(services.values())


def _body_type(op: dict[str, Any]) -> str | None:
    content = op["requestBody"]["content"]
    if "application/json" not in content:
        return "raw"
    kind = content["application/json"]["schema"].get("type")
    return str(kind) if kind else None


def _response_type(op: dict[str, Any]) -> str | None:
    """The kind of a 200 response: "ndjson" for a server stream of JSON lines,
    "raw" for a raw body (google.api.HttpBody)."""
    content = op["responses"]["200"]["content"]
    if "application/x-ndjson" in content:
        return "ndjson"
    if "application/json" not in content:
        return "raw"
    kind = content["application/json"]["schema"].get("type")
    return str(kind) if kind else None


def _shell(words: list[str]) -> str:
    """A shell command line; ``$TOKEN`` stays expandable (double quotes)."""
    quoted = []
    for word in words:
        if "$TOKEN" in word:
            quoted.append('"' + word.replace('"', '\\"') + '"')
        else:
            quoted.append(shlex.quote(word))
    return " ".join(quoted)
