"""The API docs portal, through Envoy: open without a token, its assets from our
own origin, the OpenAPI document served, and examples that really work."""

from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
from html import unescape
from pathlib import Path

import httpx
import pytest
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from gateway.docs_portal.config import DocsSettings
from gateway.docs_portal.examples import PROTOSET, examples, placeholder
from local_stack.paths import DESCRIPTOR_SET, ROOT, VENV_BIN
from mesh_cli.codegen import OPENAPI
from mesh_runtime.config import describe_settings
from tests.conftest import RunningStack

LIST_DATASETS = "mesh.analytics.v1.AnalyticsService/ListDatasets"


def _get(mesh: RunningStack, path: str) -> httpx.Response:
    # No token on purpose: the portal is public.
    return httpx.get(mesh.rest + path, timeout=10)


def _example(page: str, kind: str, rpc: str) -> str:
    match = re.search(rf'<pre class="{kind}" data-rpc="{re.escape(rpc)}">(.*?)</pre>', page, re.S)
    assert match, f"no {kind} example for {rpc}"
    return unescape(match.group(1))


def test_swagger_ui_loads_through_envoy_without_a_token(mesh: RunningStack) -> None:
    page = _get(mesh, "/docs/")
    assert page.status_code == 200
    assert 'id="swagger-ui"' in page.text
    assert _get(mesh, "/docs").headers["location"].endswith("/docs/")


def test_assets_come_from_our_origin(mesh: RunningStack) -> None:
    page = _get(mesh, "/docs/").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    scripts = [a for a in assets if a.endswith(".js")]
    assert any("swagger-ui-bundle.js" in a for a in scripts)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    assert not [a for a in assets if "//" in a], "every asset is served by the portal, none from a CDN"
    for asset in assets:
        response = _get(mesh, asset)
        assert response.status_code == 200, asset
        if asset.endswith(".js"):
            assert "javascript" in response.headers["content-type"]
    init = _get(mesh, "/docs/swagger-init.js").text
    assert '"/docs/openapi.json"' in init and "validatorUrl: null" in init


def test_the_openapi_document_is_served(mesh: RunningStack) -> None:
    response = _get(mesh, "/docs/openapi.json")
    assert response.status_code == 200
    served = response.json()
    validate(served)
    generated = json.loads(OPENAPI.read_text())
    assert served["paths"] == generated["paths"]
    assert {"url": mesh.rest} == {"url": served["servers"][1]["url"]}


def test_the_services_page_lists_every_rpc(mesh: RunningStack) -> None:
    page = _get(mesh, "/docs/services")
    assert page.status_code == 200
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    for file in files:
        if file.package.startswith("mesh."):
            for service in file.service:
                for method in service.method:
                    rpc = f"{file.package}.{service.name}/{method.name}"
                    assert _example(page.text, "grpcurl", rpc)
                    assert _example(page.text, "curl", rpc)


def test_the_curl_example_works(mesh: RunningStack) -> None:
    command = _example(_get(mesh, "/docs/services").text, "curl", LIST_DATASETS)
    words = shlex.split(command)
    assert words[0] == "curl"
    headers = {}
    method, body, url = "GET", None, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(": ")
            headers[name] = value.replace("$TOKEN", mesh.tokens["viewer"])
        elif word == "-d":
            body = next(rest)
        elif not word.startswith("-"):
            url = word
    assert url is not None and url.startswith(mesh.rest + "/v1/"), "the example uses this stack's REST address"
    assert headers["authorization"] == f"Bearer {mesh.tokens['viewer']}"
    response = httpx.request(method, url, headers=headers, content=body, timeout=10)
    assert response.status_code == 200, response.text
    assert "datasets" in response.json()


def test_the_grpcurl_example_works(mesh: RunningStack, rest: httpx.Client, tmp_path: Path) -> None:
    name = f"docs-example-{secrets.token_hex(4)}"
    assert rest.post("/v1/datasets", json={"name": name}).status_code == 200
    page = _get(mesh, "/docs/services").text
    setup = unescape(re.search(r'<pre class="setup">(.*?)</pre>', page, re.S).group(1))  # type: ignore[union-attr]
    assert f"{mesh.rest}/docs/{PROTOSET}" in setup
    (tmp_path / PROTOSET).write_bytes(_get(mesh, f"/docs/{PROTOSET}").content)
    command = _example(page, "grpcurl", LIST_DATASETS)
    words = [w.replace("$TOKEN", mesh.tokens["viewer"]) for w in shlex.split(command)]
    assert words[0] == "grpcurl" and mesh.envoy in words, "the example goes through this stack's Envoy"
    result = subprocess.run(
        [str(VENV_BIN / "grpcurl"), *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert name in [d["name"] for d in reply["datasets"]] or int(reply["totalSize"]) > 50
    # Without the token the same command is refused at the edge.
    anonymous = [w for w in words if not w.startswith("authorization:")]
    anonymous.remove("-H")
    refused = subprocess.run(
        [str(VENV_BIN / "grpcurl"), *anonymous[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr


def test_raw_body_examples_send_and_save_files() -> None:
    document = json.loads(OPENAPI.read_text())
    methods = {m.name: m for service in examples(document, "http://gw", "gw:1") for m in service.methods}
    upload = shlex.split(methods["UploadCsv"].curl)
    assert upload[upload.index("--data-binary") + 1] == "@FILE" and "-d" not in upload
    grpc_request = json.loads(shlex.split(methods["UploadCsv"].grpcurl)[-3])
    assert grpc_request["csv"] == {"contentType": "application/octet-stream", "data": "BASE64_OF_FILE"}
    export = shlex.split(methods["ExportPoints"].curl)
    assert export[export.index("-o") + 1] == "FILE" and "-N" not in export


def test_server_stream_examples_print_each_line_as_it_arrives() -> None:
    document = json.loads(OPENAPI.read_text())
    methods = {m.name: m for service in examples(document, "http://gw", "gw:1") for m in service.methods}
    for name in ("WatchResults", "AskAboutResult", "StreamComplete"):
        assert methods[name].server_streaming and "-N" in shlex.split(methods[name].curl), name
    assert not methods["ExportPoints"].server_streaming and not methods["GetDataset"].server_streaming


def test_every_setting_of_the_portal_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    for variable, _default, doc in describe_settings(DocsSettings):
        assert f"\n{variable}=" in example, f"{variable} missing from .env.example"
        assert doc


def test_placeholders_name_the_field() -> None:
    assert placeholder("datasetId") == "DATASET_ID"
    assert placeholder("dataset.id") == "DATASET_ID"
    assert placeholder("updateMask") == "UPDATE_MASK"


def test_bad_settings_stop_the_portal_with_one_line(tmp_path: Path) -> None:
    import sys

    def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.docs_portal"],
            cwd=ROOT,
            env={"PATH": str(VENV_BIN), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad_port = start({"DOCS_PORT": "abc"})
    assert bad_port.returncode == 2
    assert bad_port.stderr.strip() == "docs: configuration error: DOCS_PORT: expected an integer, got 'abc'"
    missing = start({"DOCS_OPENAPI_FILE": str(tmp_path / "nope.json")})
    assert missing.returncode == 2
    assert "nope.json is missing: run ./mesh gen" in missing.stderr


@pytest.mark.browser
def test_swagger_ui_renders_every_operation_in_a_browser_from_our_origin_only(mesh: RunningStack) -> None:
    from tests.web.browser import fresh_page, launched_chromium, screenshot

    operations = sum(len(item) for item in json.loads(OPENAPI.read_text())["paths"].values())
    requested: list[str] = []
    with launched_chromium() as browser, fresh_page(browser) as page:
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{mesh.rest}/docs/")
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() == operations
        assert page.locator(".opblock-tag").count() == len(json.loads(OPENAPI.read_text())["tags"])
        screenshot(page, "docs-portal")
        page.goto(f"{mesh.rest}/docs/services")
        assert page.locator("pre.grpcurl").count() == operations
        screenshot(page, "docs-services")
    foreign = [url for url in requested if not url.startswith(mesh.rest + "/")]
    assert foreign == [], "the portal loads nothing from elsewhere"
    assert f"{mesh.rest}/docs/openapi.json" in requested
