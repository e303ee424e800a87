"""The Kubernetes manifests (kustomize base and production overlay), built by
the tests' small kustomize and checked against the Kubernetes schemas
(kubernetes-validate, strict), then for what an operator would notice."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.compose_files import SETTINGS_EXAMPLE, documented
from tests.deploy.kustomize import KustomizeError, build, strategic_merge
from tests.deploy.process_settings import NOT_YET_IN_ENV_EXAMPLE, settings_classes

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
OBSERVABILITY = K8S / "observability"
KUBERNETES_VERSION = "1.33.0"
GRPC_PROCESSES = ("analytics", "analytics-scheduler", "analytics-worker", "llm", "notify")
STATELESS = ("analytics", "analytics-worker", "llm", "notify", "docs", "envoy")
# Settings that hold a secret (URLs carry logins) and belong in a Secret.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|PRIVATE|DATABASE_URL|NATS_URL")


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("folder", [BASE, PRODUCTION, OBSERVABILITY], ids=["base", "production", "observability"])
def test_every_manifest_matches_its_kubernetes_schema(folder: Path) -> None:
    docs = build(folder)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_the_schema_check_can_fail() -> None:
    deployment = by_kind(build(BASE), "Deployment")["analytics"]
    containers(deployment)[0]["readinessProbe"]["grpc"]["prot"] = 50051
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_loader_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nreplicas:\n  - name: web\n    count: 2\n")
    with pytest.raises(KustomizeError, match="replicas"):
        build(tmp_path)
    merged = strategic_merge(
        {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}]},
        {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}]},
    )
    assert merged == {
        "containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
    }


def test_every_process_has_a_deployment() -> None:
    deployments = by_kind(build(BASE), "Deployment")
    assert set(deployments) == {*GRPC_PROCESSES, "docs", "envoy", "web"}


def test_grpc_processes_have_grpc_readiness_and_liveness_probes() -> None:
    deployments = by_kind(build(BASE), "Deployment")
    for name in GRPC_PROCESSES:
        (container,) = containers(deployments[name])
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        health_port = int(env.get("MESH_HEALTH_PORT") or next(v for k, v in env.items() if k.endswith("_GRPC_PORT")))
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == health_port, f"{name} {probe}"
    for name in ("docs", "envoy", "web"):
        (container,) = containers(deployments[name])
        assert {"readinessProbe", "livenessProbe"} <= set(container), name


def test_pods_run_unprivileged_with_resources() -> None:
    for name, deployment in by_kind(build(PRODUCTION), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for container in containers(deployment):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


def test_stateless_services_autoscale() -> None:
    docs = build(BASE)
    deployments = by_kind(docs, "Deployment")
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == set(STATELESS)
    for name, hpa in autoscalers.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert name in deployments
        assert hpa["spec"]["minReplicas"] >= 1 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        for container in containers(deployments[name]):
            assert "cpu" in container["resources"]["requests"], f"{name}: CPU autoscaling needs a CPU request"


def test_config_comes_from_the_configmap_and_secrets() -> None:
    docs = build(BASE)
    assert not by_kind(docs, "Secret"), "secrets are made with kubectl, never committed"
    config = by_kind(docs, "ConfigMap")["mesh-config"]["data"]
    settings = documented(SETTINGS_EXAMPLE) | NOT_YET_IN_ENV_EXAMPLE.keys()
    assert not set(config) - settings, f"undocumented settings: {sorted(set(config) - settings)}"
    for key in config:
        assert not SECRET_NAME.search(key), f"{key} belongs in a Secret"
    for name, deployment in by_kind(docs, "Deployment").items():
        for container in containers(deployment):
            if name != "envoy":
                refs = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
                assert refs == ["mesh-config"], name
            for env in container.get("env", []):
                assert env["name"] in settings, f"{name} sets {env['name']}, which .env.example does not document"
                if SECRET_NAME.search(env["name"]):
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "mesh-secrets", f"{name} {env['name']}"
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v}
        assert secrets <= {"mesh-auth-keys"}, name
    envoy_volumes = by_kind(docs, "Deployment")["envoy"]["spec"]["template"]["spec"]["volumes"]
    (keys,) = [v for v in envoy_volumes if "secret" in v]
    assert [i["key"] for i in keys["secret"]["items"]] == ["jwks.json"], "Envoy gets the public keys only"


def test_envoy_upstreams_are_headless_services() -> None:
    """The Envoy image carries deploy/compose/envoy.json: its upstream names must be
    Services here, headless so DNS lists every pod and Envoy balances per request."""
    services = by_kind(build(BASE) + build(OBSERVABILITY), "Service")
    config = json.loads((ROOT / "deploy" / "compose" / "envoy.json").read_text())
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "envoy_admin":
            continue  # Envoy's own admin, on loopback (served to Prometheus on the stats listener)
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                service = services[address["address"]]
                assert service["spec"].get("clusterIP") == "None", address["address"]
                assert address["port_value"] in [p["port"] for p in service["spec"]["ports"]]


def test_production_overlay() -> None:
    docs = build(PRODUCTION)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "analytics-mesh", doc["metadata"]["name"]
    deployments = by_kind(docs, "Deployment")
    for name, deployment in deployments.items():
        for container in containers(deployment):
            image = container["image"]
            assert image.startswith("registry.example.com/") and not image.endswith(":dev"), f"{name}: {image}"
    assert by_kind(docs, "ConfigMap")["mesh-config"]["data"]["MESH_GRPC_REFLECTION"] == "false"
    assert deployments["analytics-worker"]["spec"]["replicas"] == 4
    assert by_kind(docs, "HorizontalPodAutoscaler")["analytics-worker"]["spec"]["maxReplicas"] == 40
    namespace = by_kind(docs, "Namespace")["analytics-mesh"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_image_is_built_here() -> None:
    for name, deployment in by_kind(build(BASE), "Deployment").items():
        for container in containers(deployment):
            image, _, tag = container["image"].partition(":")
            assert image.startswith("analytics-mesh/") and tag, f"{name}: {container['image']}"
            dockerfile = ROOT / "deploy" / "docker" / f"{image.removeprefix('analytics-mesh/')}.Dockerfile"
            assert dockerfile.exists(), f"{name} runs {image}, which no Dockerfile builds"


SAMPLE_SECRETS = {
    "ANALYTICS_DATABASE_URL": "postgresql://analytics:pw@db:5432/analytics",
    "NOTIFY_DATABASE_URL": "postgresql://notify:pw@db:5432/notify",
    "NATS_URL": "nats://mesh:pw@nats:4222",
    "NOTIFY_LINK_SECRET": "0123456789abcdef0123456789abcdef",
    "SMTP_USERNAME": "mailer",
    "SMTP_PASSWORD": "pw",
    "OPENROUTER_API_KEY": "sk-or-sample",
    "LLM_API_KEY": "",
}


@pytest.mark.parametrize("folder", [BASE, PRODUCTION], ids=["base", "production"])
def test_every_process_accepts_its_settings(folder: Path) -> None:
    """The ConfigMap plus each container's env (secrets filled in) pass the process's
    own settings validation."""
    from mesh_runtime.config import ConfigError, load_settings

    docs = build(folder)
    config = by_kind(docs, "ConfigMap")["mesh-config"]["data"]
    deployments = by_kind(docs, "Deployment")
    for name, cls in settings_classes().items():
        (container,) = containers(deployments[name])
        env = dict(config) if container.get("envFrom") else {}
        for item in container.get("env", []):
            env[item["name"]] = item["value"] if "value" in item else SAMPLE_SECRETS[item["name"]]
        try:
            load_settings(cls, env)
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def test_only_signers_get_the_signing_key() -> None:
    for name, deployment in by_kind(build(BASE), "Deployment").items():
        (container,) = containers(deployment)
        signs = any(e["name"] == "AUTH_SIGNING_KEY_FILE" for e in container.get("env", []))
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if volume.get("secret", {}).get("secretName") == "mesh-auth-keys":
                keys = [i["key"] for i in volume["secret"].get("items", [])] or ["signing-key.pem", "jwks.json"]
                assert ("signing-key.pem" in keys) == signs, f"{name}: {keys}"
    assert {
        name
        for name, d in by_kind(build(BASE), "Deployment").items()
        if any(e["name"] == "AUTH_SIGNING_KEY_FILE" for e in containers(d)[0].get("env", []))
    } == {"analytics", "analytics-worker"}


def test_observability_runs_unprivileged_and_is_wired_to_the_mesh() -> None:
    """The Collector, Jaeger and Prometheus: unprivileged with resources and probes;
    the mesh sends its spans to the Collector, the Collector runs compose's config,
    and every mesh pod Prometheus should scrape names its port "metrics"."""
    docs = build(OBSERVABILITY)
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"otel-collector", "jaeger", "prometheus"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(deployment):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert "readinessProbe" in container and "livenessProbe" in container, name
    config = by_kind(build(BASE), "ConfigMap")["mesh-config"]["data"]
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    collector = yaml.safe_load(by_kind(docs, "ConfigMap")["otel-collector-config"]["data"]["config.yaml"])
    assert collector == yaml.safe_load((ROOT / "deploy" / "compose" / "otel-collector.yaml").read_text())
    scraped = [d for d in by_kind(build(BASE), "Deployment").values() if d["metadata"]["name"] not in ("web", "docs")]
    for deployment in scraped:
        ports = {p["name"]: p["containerPort"] for c in containers(deployment) for p in c.get("ports", [])}
        assert ports.get("metrics") == 9464, deployment["metadata"]["name"]


DASK = K8S / "overlays" / "dask"


def test_the_dask_overlay_adds_a_cluster_the_workers_use() -> None:
    from analytics_svc.config import DaskPartSettings, WorkerSettings
    from mesh_runtime.config import load_settings

    docs = build(DASK)
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    deployments = by_kind(docs, "Deployment")
    assert {"dask-scheduler", "dask-worker"} <= set(deployments)
    assert "dask-scheduler" not in by_kind(build(BASE), "Deployment"), "Dask is optional"
    assert by_kind(docs, "Service")["dask-scheduler"]["spec"]["ports"][0]["port"] == 8786
    config = by_kind(docs, "ConfigMap")["mesh-config"]["data"]
    for name, cls in (("analytics-worker", WorkerSettings), ("dask-worker", DaskPartSettings)):
        (container,) = containers(deployments[name])
        env = dict(config) if container.get("envFrom") else {}
        for item in container.get("env", []):
            env[item["name"]] = item["value"] if "value" in item else SAMPLE_SECRETS[item["name"]]
        settings = load_settings(cls, env)
        if name == "analytics-worker":
            assert settings.dask_scheduler == "tcp://dask-scheduler:8786"  # type: ignore[attr-defined]
    (worker,) = containers(deployments["dask-worker"])
    (url,) = [e for e in worker["env"] if e["name"] == "ANALYTICS_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "mesh-secrets", "key": "ANALYTICS_DATABASE_URL"}
    for name in ("dask-scheduler", "dask-worker"):
        spec = deployments[name]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert container["image"] == "analytics-mesh/analytics:dev"
