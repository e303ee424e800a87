"""docker-compose.yml and the production override, checked without Docker:
against the compose-spec schema, then for what a user would notice (health
checks and ordered start-up, scaling, no root, no secrets, documented
settings, what production changes), and Envoy's compose configs with Envoy."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import nats
import nats.errors
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local_stack import infra
from local_stack.paths import DESCRIPTOR_SET
from local_stack.ports import free_port
from mesh_runtime.auth_keys import KeyFolder
from tests.deploy.compose_files import (
    COMPOSE,
    COMPOSE_ENV_EXAMPLE,
    COMPOSE_PROD,
    ROOT,
    SETTINGS_EXAMPLE,
    MissingVariable,
    active_services,
    documented,
    example_env,
    interpolate,
    load,
    merge,
    untagged,
    variables,
)
from tests.deploy.process_settings import NOT_YET_IN_ENV_EXAMPLE, settings_classes
from tests.eventually import eventually

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
ENVOY_DIR = ROOT / "deploy" / "compose"
# Our images (built from deploy/docker); the rest are official images.
OUR_IMAGE = "analytics-mesh/"
GRPC_SERVICES = ("analytics", "analytics-scheduler", "analytics-worker", "llm", "notify")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|PRIVATE")


def dev_model() -> dict[str, Any]:
    return interpolate(untagged(load(COMPOSE)), example_env())


def prod_model() -> dict[str, Any]:
    env = {**example_env(), "SMTP_HOST": "smtp.example.com"}
    return interpolate(merge(load(COMPOSE), load(COMPOSE_PROD)), env)


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_PROD], ids=lambda p: p.name)
def test_compose_files_match_the_compose_spec(path: Path) -> None:
    assert schema_errors(untagged(load(path))) == []


def test_merged_and_interpolated_models_match_the_compose_spec() -> None:
    assert schema_errors(dev_model()) == []
    assert schema_errors(prod_model()) == []


def test_the_schema_check_can_fail() -> None:
    broken = dev_model()
    broken["services"]["analytics"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["notify"]["depends_on"]["postgres"]["condition"] = "service_ready"
    errors = schema_errors(broken)
    assert any("intervall" in e for e in errors) and any("service_ready" in e for e in errors), errors


def test_the_issue_lists_every_service() -> None:
    services = set(dev_model()["services"])
    assert {
        "postgres", "nats", "mailpit", "envoy", "analytics", "analytics-scheduler", "analytics-worker",
        "llm", "notify", "docs", "web",
    } <= services  # fmt: skip


def one_shot_jobs(services: dict[str, Any]) -> set[str]:
    """Services others wait for to finish (not to be healthy)."""
    return {
        dep
        for s in services.values()
        for dep, how in (s.get("depends_on") or {}).items()
        if how.get("condition") == "service_completed_successfully"
    }


# Long-running services whose image has nothing to check itself with (distroless);
# nothing may wait on them being healthy.
UNCHECKABLE = {"otel-collector"}


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = dev_model()["services"]
    for name, service in services.items():
        if name in one_shot_jobs(services):
            assert "restart" not in service, f"{name} runs once; it must not be restarted"
            continue
        if name in UNCHECKABLE:
            assert service["healthcheck"] == {"disable": True}, name
            assert not any(name in (s.get("depends_on") or {}) for s in services.values()), f"{name} is waited on"
            continue
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"


def test_grpc_services_are_checked_with_the_grpc_health_service() -> None:
    services = dev_model()["services"]
    for name in GRPC_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "mesh_runtime.healthcheck"], name
        port = test[4].rpartition(":")[2]
        env = services[name]["environment"]
        # The check asks the port the process really serves health on.
        assert port in (env.get("MESH_HEALTH_PORT"), *(v for k, v in env.items() if k.endswith("_GRPC_PORT"))), name
    for name in ("analytics-scheduler", "analytics-worker"):
        assert services[name]["environment"]["MESH_HEALTH_PORT"] == "8081"


def test_start_up_waits_on_health() -> None:
    services = dev_model()["services"]
    jobs = one_shot_jobs(services)
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in jobs else "service_healthy"
            assert how.get("condition") == expected, f"{name} -> {dep}: {how}"
    assert {"postgres", "nats"} <= set(services["analytics"]["depends_on"])
    assert {"postgres", "nats"} <= set(services["notify"]["depends_on"])
    assert {"analytics", "llm", "notify", "docs"} <= set(services["envoy"]["depends_on"])
    # Schedulers and workers use tables the API migrates.
    for name in ("analytics-scheduler", "analytics-worker"):
        assert "analytics" in services[name]["depends_on"]


def test_scaled_services_can_have_replicas() -> None:
    """`--scale analytics-worker=4 --scale notify=2` needs no fixed names or host ports."""
    services = dev_model()["services"]
    for name in ("analytics", "analytics-scheduler", "analytics-worker", "llm", "notify", "docs"):
        assert "container_name" not in services[name], name
        assert not services[name].get("ports"), f"{name} publishes a host port: a second replica could not start"


def test_envoy_balances_over_every_replica() -> None:
    """Envoy resolves each service name to all its containers (STRICT_DNS) and round-robins."""
    config = json.loads((ENVOY_DIR / "envoy.json").read_text())
    services = dev_model()["services"]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert {"analytics", "llm", "notify", "docs", "otlp_collector"} <= set(clusters)
    # Envoy's own admin (its /stats/prometheus, served to Prometheus on the stats listener) is on loopback.
    assert clusters.pop("envoy_admin")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ] == {"address": "127.0.0.1", "port_value": 9901}
    for cluster in clusters.values():
        assert cluster["type"] == "STRICT_DNS"
        assert cluster.get("lb_policy", "ROUND_ROBIN") == "ROUND_ROBIN"
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                assert address["address"] in services, f"{cluster['name']} points at {address['address']}"


def test_nats_keeps_jetstream_on_a_volume() -> None:
    nats = dev_model()["services"]["nats"]
    assert "--jetstream" in nats["command"]
    store = nats["command"][nats["command"].index("--store_dir") + 1]
    assert any(v.split(":")[1] == store for v in nats["volumes"]), nats["volumes"]


def test_nats_wants_the_login_every_service_gives(tmp_path: Path) -> None:
    services = dev_model()["services"]
    nats = services["nats"]
    mount = nats["command"][nats["command"].index("--config") + 1]
    (conf,) = [ROOT / v.split(":")[0] for v in nats["volumes"] if v.split(":")[1] == mount]
    password = example_env()["NATS_PASSWORD"]
    assert nats["environment"]["NATS_PASSWORD"] == password
    urls = {services[name]["environment"]["NATS_URL"] for name in ("analytics-scheduler", "analytics-worker", "notify")}
    assert urls == {f"nats://mesh:{password}@nats:4222"}
    # The config file, read by a real nats-server: no login, no connection.
    port, monitor = free_port(), free_port()
    server = subprocess.Popen(  # noqa: S603 - the pip-installed nats-server
        [str(infra.VENV_BIN / "nats-server"), "--config", str(conf), "--addr", "127.0.0.1", "--port", str(port),
         "--http_port", str(monitor)],
        env={"NATS_PASSWORD": password}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        eventually(lambda: _http_ok(f"http://127.0.0.1:{monitor}/healthz"), 30, "nats-server to start")
        assert not asyncio.run(_nats_accepts(f"nats://127.0.0.1:{port}"))
        assert not asyncio.run(_nats_accepts(f"nats://mesh:wrong@127.0.0.1:{port}"))
        assert asyncio.run(_nats_accepts(f"nats://mesh:{password}@127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(30)


def _http_ok(url: str) -> bool:
    try:
        return infra.http_ok(url)
    except OSError:
        return False


async def _nats_accepts(url: str) -> bool:
    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
    except (nats.errors.Error, OSError):
        return False
    await nc.close()
    return True


def dockerfile_user(dockerfile: Path) -> str:
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), re.MULTILINE)
    assert users, f"{dockerfile} sets no USER"
    return str(users[-1])


def test_nothing_we_build_runs_as_root() -> None:
    for name, service in dev_model()["services"].items():
        user = service.get("user")
        assert user is None or user.split(":")[0] not in ("0", "root"), f"{name} runs as {user}"
        build = service.get("build")
        if build:
            assert service["image"].startswith(OUR_IMAGE), name
            user = dockerfile_user(ROOT / build["context"] / build["dockerfile"])
            assert user.split(":")[0] not in ("0", "root"), f"{name}'s image runs as {user}"


def test_no_secret_value_is_committed() -> None:
    """Secret settings come from .env (`${VAR:?...}` when required), never literals."""
    for path in (COMPOSE, COMPOSE_PROD):
        for name, service in untagged(load(path))["services"].items():
            for key, value in (service.get("environment") or {}).items():
                if SECRET_NAME.search(key):
                    assert re.fullmatch(r"\$\{[A-Z0-9_]+(:[-?][^}]*)?\}", str(value)), f"{path.name} {name}.{key}"
    for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines():
        name, _, value = line.partition("=")
        if SECRET_NAME.search(name) and not line.startswith("#"):
            assert value == "", f"{COMPOSE_ENV_EXAMPLE.name} gives {name} a value"
    pem = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    for path in [*ROOT.joinpath("deploy").rglob("*"), COMPOSE, COMPOSE_PROD]:
        if path.is_file() and path.suffix in ("", ".yml", ".yaml", ".json", ".sh", ".example", ".Dockerfile"):
            assert not pem.search(path.read_text(errors="replace")), f"{path} holds a private key"


def test_required_secrets_are_refused_when_missing() -> None:
    env = example_env()
    required = ("POSTGRES_PASSWORD", "ANALYTICS_DB_PASSWORD", "NOTIFY_DB_PASSWORD", "NOTIFY_LINK_SECRET")
    required += ("NATS_PASSWORD",)
    for secret in required:
        with pytest.raises(MissingVariable, match=secret):
            interpolate(untagged(load(COMPOSE)), {**env, secret: ""})
    with pytest.raises(MissingVariable, match="SMTP_HOST"):
        interpolate(merge(load(COMPOSE), load(COMPOSE_PROD)), {**env, "SMTP_HOST": ""})


def test_every_variable_is_documented() -> None:
    """Settings the services read are in .env.example; what compose reads from .env is in
    deploy/compose.env.example."""
    from mesh_runtime.config import describe_settings

    settings = documented(SETTINGS_EXAMPLE)
    for variable, reader in NOT_YET_IN_ENV_EXAMPLE.items():
        assert variable not in settings, f"{variable} is in .env.example now: remove it from NOT_YET_IN_ENV_EXAMPLE"
        docs = {v: doc for v, _default, doc in describe_settings(settings_classes()[reader])}
        assert docs.get(variable), f"{reader} does not declare {variable} with a description"
    settings |= NOT_YET_IN_ENV_EXAMPLE.keys()
    compose_vars = documented(COMPOSE_ENV_EXAMPLE)
    for path in (COMPOSE, COMPOSE_PROD):
        data = untagged(load(path))
        missing = variables(data) - compose_vars
        assert not missing, f"{path.name} reads {sorted(missing)} not documented in {COMPOSE_ENV_EXAMPLE.name}"
    for name, service in dev_model()["services"].items():
        if not str(service.get("image", "")).startswith(OUR_IMAGE):
            continue  # official images: their own variables (POSTGRES_PASSWORD, ...)
        unknown = set(service.get("environment") or {}) - settings
        assert not unknown, f"{name} sets {sorted(unknown)}, which .env.example does not document"


def test_production_override() -> None:
    model = prod_model()
    active = active_services(model)
    assert "mailpit" not in active, "mailpit must not run in production"
    for name, service in active.items():
        if name not in one_shot_jobs(active):
            assert service.get("restart") in ("always", "unless-stopped"), f"{name} has no restart policy"
            limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
            assert {"cpus", "memory"} <= set(limits), f"{name} has no resource limits"
        for dep in service.get("depends_on") or {}:
            assert dep in active, f"{name} depends on {dep}, which production does not start"
    for name in GRPC_SERVICES:
        assert active[name]["environment"]["MESH_GRPC_REFLECTION"] == "false", name
    notify = active["notify"]["environment"]
    assert notify["SMTP_HOST"] == "smtp.example.com" and notify["SMTP_SECURITY"] == "starttls"
    envoy = active["envoy"]
    assert envoy["ports"] == ["443:8443"], "only the TLS listener is published"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in envoy["volumes"]}
    assert mounts["/etc/envoy/envoy.json"] == "./deploy/compose/envoy.prod.json"
    assert mounts["/etc/envoy/tls"] == "./deploy/compose/certs"
    assert active["web"]["ports"] == ["127.0.0.1:3000:3000"]


def test_envoy_configs_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "envoy_configs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def with_local_files(config_path: Path, tmp_path: Path) -> Path:
    """The committed config with the container's mount points swapped for real local files."""
    keys = KeyFolder(tmp_path / "auth")
    keys.ensure()
    cert, key = self_signed(tmp_path)
    text = config_path.read_text()
    mounts = {
        "/etc/envoy/descriptor.binpb": DESCRIPTOR_SET,
        "/run/mesh-auth/jwks.json": keys.jwks,
        "/etc/envoy/tls/tls.crt": cert,
        "/etc/envoy/tls/tls.key": key,
    }
    for mount, local in mounts.items():
        text = text.replace(json.dumps(mount), json.dumps(str(local)))
    out = tmp_path / config_path.name
    out.write_text(text)
    return out


@pytest.mark.parametrize("name", ["envoy.json", "envoy.prod.json"])
def test_envoy_accepts_the_compose_configs(name: str, tmp_path: Path) -> None:
    result = infra.validate_envoy_config(with_local_files(ENVOY_DIR / name, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_production_edge_speaks_tls_only() -> None:
    config = json.loads((ENVOY_DIR / "envoy.prod.json").read_text())
    listeners = {lis["name"]: lis for lis in config["static_resources"]["listeners"]}
    assert set(listeners) == {"mesh", "stats"}
    # The stats listener (not published) serves Prometheus the stats and nothing else of the admin.
    (stats_host,) = listeners["stats"]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"
    ]
    assert [r["match"] for r in stats_host["routes"] if "route" in r] == [{"path": "/stats/prometheus"}]
    listener = listeners["mesh"]
    assert listener["address"]["socket_address"]["port_value"] == 8443
    for chain in listener["filter_chains"]:
        tls = chain["transport_socket"]["typed_config"]["common_tls_context"]
        assert "h2" in tls["alpn_protocols"], "gRPC clients need HTTP/2 over TLS"
    admin = config["admin"]["address"]["socket_address"]["address"]
    assert admin == "127.0.0.1", "the admin interface stays inside the container"


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_service_accepts_its_compose_settings(variant: str) -> None:
    """What compose sets passes each service's own settings validation (a bad value
    would stop the container at start with `configuration error`)."""
    from mesh_runtime.config import ConfigError, load_settings

    services = (dev_model() if variant == "dev" else prod_model())["services"]
    for name, cls in settings_classes().items():
        env = {k: str(v) for k, v in (services[name].get("environment") or {}).items()}
        try:
            load_settings(cls, env)
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def test_each_process_is_given_only_settings_it_reads() -> None:
    """A variable a process does not read is a typo or a leftover (and a secret
    handed out for nothing)."""
    from mesh_runtime.config import describe_settings

    services = dev_model()["services"]
    for name, cls in settings_classes().items():
        reads = {variable for variable, _default, _doc in describe_settings(cls)}
        extra = set(services[name].get("environment") or {}) - reads
        assert not extra, f"{name} is given {sorted(extra)}, which it does not read"


def test_only_signers_can_read_the_signing_key() -> None:
    services = dev_model()["services"]
    with_key = {name for name, s in services.items() if any(v.startswith("auth-keys:") for v in s.get("volumes", []))}
    assert with_key == {"auth-keys", "analytics", "analytics-worker"}
    for name in with_key - {"auth-keys"}:
        key_file = services[name]["environment"]["AUTH_SIGNING_KEY_FILE"]
        assert key_file.startswith("/run/mesh-auth/"), name
    for name, service in services.items():
        jwks = (service.get("environment") or {}).get("AUTH_JWKS_FILE")
        if jwks:
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}
            assert mounts.get(str(Path(jwks).parent)) in ("auth-keys", "auth-jwks"), f"{name} cannot read {jwks}"
    envoy_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["envoy"]["volumes"]}
    assert envoy_mounts["/run/mesh-auth"] == "auth-jwks"


def test_the_auth_keys_job_makes_keys_once_and_shares_the_public_set(tmp_path: Path) -> None:
    """Runs the job's own command, with its two volumes as local folders."""
    services = dev_model()["services"]
    job = services["auth-keys"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in job["volumes"]}
    command = [
        part.replace(mounts["auth-keys"], str(tmp_path / "keys")).replace(mounts["auth-jwks"], str(tmp_path / "jwks"))
        for part in job["command"]
    ]
    (tmp_path / "jwks").mkdir()

    def run() -> None:
        result = subprocess.run(
            [sys.executable if command[0] == "python" else command[0], *command[1:]],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    run()
    keys = KeyFolder(tmp_path / "keys")
    first = keys.signing_key.read_bytes()
    assert (tmp_path / "jwks" / "jwks.json").read_text() == keys.jwks.read_text()
    assert keys.signing_key.stat().st_mode & 0o077 == 0, "the signing key is private to its owner"
    run()  # a restart keeps the key (tokens stay valid)
    assert keys.signing_key.read_bytes() == first
    for name in ("analytics", "analytics-worker"):
        assert services[name]["environment"]["AUTH_SIGNING_KEY_FILE"] == f"{mounts['auth-keys']}/signing-key.pem"


def test_prometheus_scrapes_every_process_and_envoy() -> None:
    """Prometheus (deploy/compose/prometheus.yml) finds every replica of each
    process with metrics by its service name, on the port it serves them on,
    and Envoy's stats on its stats listener; traces go to the Collector."""
    services = dev_model()["services"]
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (mesh,) = jobs["mesh"]["dns_sd_configs"]
    assert set(mesh["names"]) == set(GRPC_SERVICES)
    for name in mesh["names"]:
        assert services[name]["environment"]["METRICS_PORT"] == str(mesh["port"]), name
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", name
    (envoy,) = jobs["envoy"]["dns_sd_configs"]
    envoy_config = json.loads((ENVOY_DIR / "envoy.json").read_text())
    (stats,) = [lis for lis in envoy_config["static_resources"]["listeners"] if lis["name"] == "stats"]
    assert (envoy["names"], envoy["port"]) == (["envoy"], stats["address"]["socket_address"]["port_value"])
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"


def test_the_dask_profile_adds_a_cluster_the_workers_can_use() -> None:
    """`--profile dask` starts a Dask scheduler and workers (the analytics image, reading
    PostgreSQL themselves); without it nothing of Dask runs and the workers analyse alone."""
    from analytics_svc.config import DaskPartSettings, WorkerSettings
    from mesh_runtime.config import describe_settings, load_settings

    model = dev_model()
    assert not {"dask-scheduler", "dask-worker"} & set(active_services(model))
    services = active_services(model, ("dask",))
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["image"] == worker["image"] == services["analytics-worker"]["image"]
    assert scheduler["command"][:4] == ["dask", "scheduler", "--port", "8786"]
    assert worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert not scheduler.get("ports") and not worker.get("ports"), "workers scale; no host ports"
    assert worker["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    env = {k: str(v) for k, v in worker["environment"].items()}
    settings = load_settings(DaskPartSettings, env)
    assert settings.database_url.endswith("@postgres:5432/analytics")
    reads = {variable for variable, _default, _doc in describe_settings(DaskPartSettings)}
    assert set(env) <= reads
    # The analytics workers use the cluster when .env names it, and not otherwise.
    worker_env = {k: str(v) for k, v in services["analytics-worker"]["environment"].items()}
    assert load_settings(WorkerSettings, worker_env).dask_scheduler == ""
    with_dask = interpolate(
        untagged(load(COMPOSE)), {**example_env(), "ANALYTICS_DASK_SCHEDULER": "tcp://dask-scheduler:8786"}
    )
    worker_env = {k: str(v) for k, v in with_dask["services"]["analytics-worker"]["environment"].items()}
    assert load_settings(WorkerSettings, worker_env).dask_scheduler == "tcp://dask-scheduler:8786"
    production = active_services(prod_model(), ("dask",))
    for name in ("dask-scheduler", "dask-worker"):
        assert production[name]["restart"] == "unless-stopped"
        assert {"cpus", "memory"} <= set(production[name]["deploy"]["resources"]["limits"])
