"""The whole mesh on one machine, without containers: what ``./mesh up`` runs
and what the test suite's session fixture starts.

Order: PostgreSQL, NATS, SMTP catcher, the three services, Envoy, web app;
each waited for until healthy. A failure at any step stops everything
started so far and reports one actionable message.
"""

from __future__ import annotations

import asyncio
import functools
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import envoy_config
from local_stack import infra, trace_viewer
from local_stack.credentials import FILE_NAME as CREDENTIALS_FILE
from local_stack.credentials import NATS_USER, LocalCredentials
from local_stack.paths import DESCRIPTOR_SET, ROOT, STATE_DIR
from local_stack.ports import free_port, port_in_use
from local_stack.process_env import withheld_from
from local_stack.processes import COLOURS, ManagedProcess, ProcessSpec, RestartBackoff, wait_until
from mesh_runtime.auth_keys import KeyFolder
from mesh_runtime.config import parse_bool, parse_int, parse_port, positive, setting
from mesh_runtime.telemetry import sampling_percent, telemetry_wanted, traces_endpoint

SERVICE_DATABASES = {"analytics": "analytics", "notify": "notify"}


class StackError(RuntimeError):
    """The stack could not start; the message says what to do."""


@dataclass(frozen=True)
class StackSettings:
    """Ports and options of the local stack (0 picks a free port)."""

    state_dir: Path = setting("MESH_STATE_DIR", STATE_DIR, Path, "Where data and logs of `mesh up` live.")
    postgres_port: int = setting("MESH_POSTGRES_PORT", 15432, parse_port, "Local PostgreSQL port.")
    nats_port: int = setting("MESH_NATS_PORT", 14222, parse_port, "Local NATS client port.")
    nats_monitor_port: int = setting("MESH_NATS_MONITOR_PORT", 18222, parse_port, "NATS monitoring port.")
    smtp_port: int = setting("MESH_SMTP_PORT", 11025, parse_port, "SMTP port of the mail catcher.")
    mail_http_port: int = setting("MESH_MAIL_HTTP_PORT", 18025, parse_port, "HTTP API port of the mail catcher.")
    envoy_port: int = setting("MESH_ENVOY_PORT", 18080, parse_port, "Envoy: REST and gRPC for clients.")
    envoy_admin_port: int = setting("MESH_ENVOY_ADMIN_PORT", 19901, parse_port, "Envoy admin port.")
    docs_port: int = setting("MESH_DOCS_PORT", 18090, parse_port, "API docs portal (Envoy routes /docs to it).")
    analytics_port: int = setting("ANALYTICS_GRPC_PORT", 50051, parse_port, "analytics gRPC port.")
    llm_port: int = setting("LLM_GRPC_PORT", 50052, parse_port, "llm gRPC port.")
    notify_port: int = setting("NOTIFY_GRPC_PORT", 50053, parse_port, "notify gRPC port.")
    web_port: int = setting("WEB_PORT", 3000, parse_port, "Web app port.")
    valkey_port: int = setting(
        "MESH_VALKEY_PORT", 16379, parse_port, "Local Valkey port: the web app's sessions, shared by its replicas."
    )
    web: bool = setting("MESH_WEB", True, parse_bool, "Start the web app with `mesh up`.")
    trace_viewer: bool = setting(
        "MESH_TRACE_VIEWER",
        True,
        parse_bool,
        "Run a trace viewer (Phoenix) that every process sends its spans to, unless an OTLP endpoint is set.",
    )
    trace_viewer_port: int = setting(
        "MESH_TRACE_VIEWER_PORT", 16006, parse_port, "Trace viewer (Phoenix): its UI and OTLP/HTTP receiver."
    )
    trace_viewer_grpc_port: int = setting(
        "MESH_TRACE_VIEWER_GRPC_PORT", 14317, parse_port, "Trace viewer (Phoenix): its OTLP/gRPC receiver."
    )
    analytics_workers: int = setting(
        "MESH_ANALYTICS_WORKERS", 1, positive(parse_int), "Analytics worker processes `mesh up` runs."
    )
    analytics_schedulers: int = setting(
        "MESH_ANALYTICS_SCHEDULERS", 1, positive(parse_int), "Analytics scheduler processes `mesh up` runs."
    )
    log_format: str = "text"
    fast_database: bool = False
    # Envoy's time, size and rate limits (gateway/envoy_config.py's defaults when None).
    envoy_limits: envoy_config.EdgeLimits | None = None


_PORT_FIELDS = [f.name for f in fields(StackSettings) if f.name.endswith("_port")]
_PORT_ENV = {f.name: f.metadata.get("mesh_env", f.name) for f in fields(StackSettings)}


def resolve_ports(settings: StackSettings) -> StackSettings:
    """Settings with every 0 port replaced by a free one; StackError if a
    configured port is taken."""
    chosen: dict[str, Any] = {}
    for name in _PORT_FIELDS:
        port = getattr(settings, name)
        if name in ("web_port", "valkey_port") and not settings.web and port != 0:
            continue
        if name.startswith("trace_viewer") and not settings.trace_viewer and port != 0:
            continue
        if port == 0:
            port = free_port()
            while port in chosen.values():
                port = free_port()
        elif port_in_use(port):
            raise StackError(
                f"port {port} ({_PORT_ENV[name]}) is already in use: stop what uses it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or set {_PORT_ENV[name]} to a free port"
            )
        if port in chosen.values():
            raise StackError(f"port {port} is configured twice; give {_PORT_ENV[name]} its own port")
        chosen[name] = port
    return replace(settings, **chosen)


def keep_private(folder: Path) -> None:
    """Take every group and other permission off ``folder`` and everything in
    it (logs, captured mail, keys, data of an older run): its user's alone.
    The stack's children run with umask 077, so what they write stays so.
    As root, others keep passing through folders (never reading them): PostgreSQL
    runs as its own system user and reaches its data under the state folder."""
    keep = 0o001 if os.geteuid() == 0 else 0
    for path in [folder, *folder.rglob("*")]:
        try:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            allowed = keep if stat.S_ISDIR(mode) else 0
            if stat.S_IMODE(mode) & 0o077 & ~allowed:
                path.chmod(stat.S_IMODE(mode) & ~(0o077 & ~allowed))
        except FileNotFoundError:  # removed meanwhile (a temporary file)
            continue


def service_database_url(settings: StackSettings, service: str) -> str:
    """URL of ``service``'s own database on the local PostgreSQL (with the
    password the stack made); the environment's ``<SERVICE>_DATABASE_URL``
    wins (to administer another one)."""
    credentials = LocalCredentials.load(settings.state_dir)
    return os.environ.get(f"{service.upper()}_DATABASE_URL") or infra.postgres_dsn(
        settings.postgres_port, SERVICE_DATABASES[service], credentials.postgres_password if credentials else None
    )


async def grpc_serving(address: str) -> bool:
    """Whether the gRPC server at ``address`` reports SERVING on the health service."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _grpc_ready(port: int) -> Callable[[], Awaitable[bool]]:
    return lambda: grpc_serving(f"127.0.0.1:{port}")


class Stack:
    """Starts, supervises and stops every process of the local mesh."""

    def __init__(
        self,
        settings: StackSettings,
        console: IO[str] | None = sys.stdout,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.console = console
        self.extra_env = dict(extra_env or {})
        self.processes: list[ManagedProcess] = []
        self.logs_dir = settings.state_dir / "logs"
        self._backoffs: dict[str, RestartBackoff] = {}
        # Each service process's Prometheus endpoint port (METRICS_PORT), by process name.
        self.metrics_ports: dict[str, int] = {}
        # Where the services send their spans when the stack runs the trace viewer.
        self.telemetry_env: dict[str, str] = {}
        self._restart_due: dict[str, float] = {}

    def _say(self, message: str) -> None:
        if self.console is not None:
            self.console.write(f"mesh: {message}\n")
            self.console.flush()

    async def _launch(self, spec: ProcessSpec) -> ManagedProcess:
        spec = replace(spec, withhold=withheld_from(spec.name))
        process = ManagedProcess(spec, self.logs_dir, self.console, COLOURS[len(self.processes) % len(COLOURS)])
        self.processes.append(process)
        await process.start()
        return process

    async def _start_and_wait(
        self, spec: ProcessSpec, ready: Callable[[], object], what: str, timeout: float = 60
    ) -> ManagedProcess:
        self._say(f"starting {what}...")
        process = await self._launch(spec)
        await wait_until(ready, timeout=timeout, what=what, process=process)
        self._say(f"{what} is ready")
        return process

    @property
    def keys(self) -> KeyFolder:
        """The stack's signing keys (made on first start)."""
        return KeyFolder(self.settings.state_dir / "auth")

    @functools.cached_property
    def credentials(self) -> LocalCredentials:
        """PostgreSQL's and NATS's generated credentials (made on first use)."""
        return LocalCredentials.ensure(self.settings.state_dir)

    def database_url(self, database: str = "postgres") -> str:
        """URL of ``database`` on the stack's PostgreSQL, as its superuser."""
        return infra.postgres_dsn(self.settings.postgres_port, database, self.credentials.postgres_password)

    @property
    def nats_url(self) -> str:
        """URL of the stack's NATS, with its login."""
        return infra.nats_url(self.settings.nats_port, self.credentials.nats_login)

    def metrics_env(self, name: str) -> dict[str, str]:
        """METRICS_PORT for process ``name``: a free port, kept while the stack runs."""
        port = self.metrics_ports.get(name) or free_port()
        while port in self.metrics_ports.values() and self.metrics_ports.get(name) != port:
            port = free_port()
        self.metrics_ports[name] = port
        return {"METRICS_PORT": str(port)}

    def metrics_urls(self) -> dict[str, str]:
        """Every Prometheus endpoint of the stack, by process name (Envoy's admin one too)."""
        urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()}
        urls["envoy"] = f"http://127.0.0.1:{self.settings.envoy_admin_port}/stats/prometheus"
        return urls

    def service_env(self) -> dict[str, str]:
        """Environment shared by the services: addresses of everything."""
        s = self.settings
        from notify_svc.links import local_link_secret  # kept with the stack's data, made once

        return {
            "AUTH_JWKS_FILE": str(self.keys.jwks),
            "AUTH_SIGNING_KEY_FILE": str(self.keys.signing_key),
            "MESH_GRPC_HOST": "127.0.0.1",
            "MESH_LOG_FORMAT": s.log_format,
            "ANALYTICS_GRPC_PORT": str(s.analytics_port),
            "LLM_GRPC_PORT": str(s.llm_port),
            "NOTIFY_GRPC_PORT": str(s.notify_port),
            "ANALYTICS_DATABASE_URL": self.database_url(SERVICE_DATABASES["analytics"]),
            "NOTIFY_DATABASE_URL": self.database_url(SERVICE_DATABASES["notify"]),
            "NATS_URL": self.nats_url,
            "ANALYTICS_ADDR": f"127.0.0.1:{s.analytics_port}",
            "LLM_ADDR": f"127.0.0.1:{s.llm_port}",
            "NOTIFY_ADDR": f"127.0.0.1:{s.notify_port}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(s.smtp_port),
            "MAIL_API_URL": f"http://127.0.0.1:{s.mail_http_port}",
            "REST_BASE_URL": f"http://127.0.0.1:{s.envoy_port}",
            "WEB_BASE_URL": f"http://127.0.0.1:{s.web_port}",
            "NOTIFY_LINK_SECRET": local_link_secret(s.state_dir / "notify" / "link-secret"),
            **self.telemetry_env,
            **self.extra_env,
        }

    def envoy_config_path(self) -> Path:
        """Where the rendered Envoy config of this stack is written."""
        return self.settings.state_dir / "envoy" / "envoy.json"

    def wants_trace_viewer(self) -> bool:
        """Whether to run the trace viewer: asked for, telemetry not turned off,
        and no other OTLP endpoint set."""
        env = {**os.environ, **self.extra_env}
        return self.settings.trace_viewer and telemetry_wanted(env) and not traces_endpoint(env)

    async def start_trace_viewer(self) -> None:
        """Install (the first time) and start the trace viewer, and point the
        services and Envoy (their OTLP endpoint) and the web app (WEB_TRACE_URL) at it."""
        s = self.settings
        try:
            phoenix = await trace_viewer.ensure_installed(self._say)
        except (trace_viewer.ViewerInstallError, OSError) as exc:
            raise StackError(str(exc)) from None
        await self._start_and_wait(
            trace_viewer.viewer_spec(
                phoenix, s.state_dir / "trace-viewer" / "data", s.trace_viewer_port, s.trace_viewer_grpc_port
            ),
            lambda: infra.http_ok(f"http://127.0.0.1:{s.trace_viewer_port}/healthz"),
            "trace viewer (Phoenix)",
            timeout=300,
        )
        self.telemetry_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{s.trace_viewer_port}"}
        if not os.environ.get("WEB_TRACE_URL"):
            self.telemetry_env["WEB_TRACE_URL"] = trace_viewer.trace_url_template(s.trace_viewer_port)

    def envoy_trace_export(self) -> envoy_config.TraceExport | None:
        """Where Envoy sends its spans: the services' OTLP endpoint (None when telemetry is off)."""
        env = {**os.environ, **self.service_env()}
        url = traces_endpoint(env)
        if not url:
            return None
        try:
            # Envoy samples new traces at the services' ratio (OTEL_TRACES_SAMPLER/_ARG).
            percent = sampling_percent(env)
        except ValueError as exc:
            raise StackError(str(exc)) from None
        try:
            return envoy_config.TraceExport.from_url(url, sampling_percent=percent)
        except ValueError as exc:
            raise StackError(f"OTEL_EXPORTER_OTLP_ENDPOINT: {exc}") from None

    def render_envoy(self) -> Path:
        """Write this stack's Envoy config and return its path."""
        s = self.settings
        if not DESCRIPTOR_SET.exists():
            raise StackError(f"{DESCRIPTOR_SET.relative_to(ROOT)} is missing: run ./mesh gen")
        config = envoy_config.render(
            listen_address="127.0.0.1",
            listen_port=s.envoy_port,
            admin_address="127.0.0.1",
            admin_port=s.envoy_admin_port,
            descriptor_path=str(DESCRIPTOR_SET),
            upstreams=local_upstreams(s),
            jwks_path=str(self.keys.jwks),
            limits=s.envoy_limits,
            docs=envoy_config.HttpUpstream("docs", "127.0.0.1", s.docs_port),
            # The web app's pages may call the API from the browser (grpc-web, REST).
            cors_origins=[f"http://127.0.0.1:{s.web_port}", f"http://localhost:{s.web_port}"],
            trace_export=self.envoy_trace_export(),
        )
        path = envoy_config.write(config, self.envoy_config_path())
        path.chmod(0o600)
        return path

    async def start(self) -> None:
        """Start everything, in order, each healthy before the next; on failure
        stop what was started and raise StackError."""
        try:
            await self._start()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, (StackError, asyncio.CancelledError, KeyboardInterrupt)):
                raise
            raise StackError(str(exc)) from exc

    async def _start(self) -> None:
        s = self.settings
        state = s.state_dir
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keys.ensure()
        await asyncio.to_thread(keep_private, state)

        password = self.credentials.postgres_password
        self._say("preparing PostgreSQL...")
        pg_user = await asyncio.to_thread(infra.prepare_postgres, state / "postgres", password)
        await self._start_and_wait(
            infra.postgres_spec(state / "postgres", s.postgres_port, pg_user, fast=s.fast_database),
            lambda: infra.postgres_ready(s.postgres_port, password),
            "PostgreSQL",
        )
        await asyncio.to_thread(infra.ensure_databases, s.postgres_port, list(SERVICE_DATABASES.values()), password)
        await self._start_and_wait(
            infra.nats_spec(state / "nats", s.nats_port, s.nats_monitor_port, self.credentials.nats_login),
            lambda: infra.nats_ready(s.nats_monitor_port),
            "NATS (JetStream)",
        )
        mail = infra.mail_catcher_spec(state / "mail", s.smtp_port, s.mail_http_port)
        await self._start_and_wait(
            # As mailpit in compose (MP_IGNORE_DUPLICATE_IDS): an e-mail notify re-sends
            # after a crash (same Message-ID) is answered 250 and not kept twice.
            replace(mail, argv=[*mail.argv, "--ignore-duplicate-ids"]),
            lambda: infra.http_ok(f"http://127.0.0.1:{s.mail_http_port}/readyz"),
            "mail catcher",
        )
        if self.wants_trace_viewer():
            await self.start_trace_viewer()
        env = self.service_env()
        await asyncio.gather(
            *(
                self._start_and_wait(
                    ProcessSpec(name, [sys.executable, "-m", module], env={**env, **self.metrics_env(name)}, cwd=ROOT),
                    _grpc_ready(port),
                    f"{name} service",
                )
                for name, module, port in (
                    ("analytics", "analytics_svc", s.analytics_port),
                    ("llm", "llm_svc", s.llm_port),
                    ("notify", "notify_svc", s.notify_port),
                )
            )
        )
        await self.start_analytics_jobs()
        await self.start_docs()
        config = self.render_envoy()
        await self._start_and_wait(
            infra.envoy_spec(config),
            lambda: infra.envoy_ready(s.envoy_admin_port),
            "Envoy",
        )
        # What the supervisor wrote meanwhile (the link secret, Envoy's config).
        await asyncio.to_thread(keep_private, state)
        if s.web:
            await self.start_web()

    async def start_analytics_jobs(self) -> None:
        """Start the analytics schedulers and workers, each ready when its gRPC health says so."""
        s = self.settings
        roles = [("scheduler", i) for i in range(s.analytics_schedulers)]
        roles += [("worker", i) for i in range(s.analytics_workers)]
        specs = []
        for role, index in roles:
            health_port = free_port()
            name = f"analytics-{role}" + (f"-{index + 1}" if index else "")
            env = {**self.service_env(), "MESH_HEALTH_PORT": str(health_port), **self.metrics_env(name)}
            specs.append((ProcessSpec(name, [sys.executable, "-m", f"analytics_svc.jobs.{role}"], env=env, cwd=ROOT),
                          health_port, name))
        await asyncio.gather(
            *(self._start_and_wait(spec, _grpc_ready(port), name) for spec, port, name in specs)
        )

    async def start_web(self, port: int | None = None, name: str = "web") -> None:
        """Start the web app (a production build of the Reflex frontend) on
        ``port`` (default: the web port), after the Valkey server that keeps
        its sessions, so that any number of replicas share them."""
        s = self.settings
        port = s.web_port if port is None else port
        if not any(p.spec.name == "valkey" and not p.exited() for p in self.processes):
            await self._start_and_wait(
                infra.valkey_spec(s.state_dir / "valkey", s.valkey_port),
                lambda: infra.valkey_ready(s.valkey_port),
                "Valkey (web sessions)",
            )
        env = {
            **self.service_env(),
            "REFLEX_REDIS_URL": f"redis://127.0.0.1:{s.valkey_port}",
            # One worker process a replica is plenty on a laptop (Reflex would start 2 x cores + 1).
            "GRANIAN_WORKERS": "1",
        }
        await self._start_and_wait(
            ProcessSpec(
                name, [sys.executable, str(ROOT / "web" / "launch.py"), "--port", str(port)], env=env, cwd=ROOT / "web"
            ),
            lambda: infra.http_ok(f"http://127.0.0.1:{port}/"),
            "web app (the first start builds the frontend: a minute or two)",
            timeout=600,
        )

    async def start_docs(self) -> None:
        """Start the API docs portal (Envoy serves it under /docs)."""
        s = self.settings
        env = {
            **self.service_env(),
            "DOCS_HOST": "127.0.0.1",
            "DOCS_PORT": str(s.docs_port),
            "GRPC_PUBLIC_ADDR": f"127.0.0.1:{s.envoy_port}",
        }
        await self._start_and_wait(
            ProcessSpec("docs", [sys.executable, "-m", "gateway.docs_portal"], env=env, cwd=ROOT),
            lambda: infra.http_ok(f"http://127.0.0.1:{s.docs_port}/docs/healthz"),
            "API docs portal",
        )

    async def restart_crashed(self) -> None:
        """Restart each process that ended on its own, after a backoff that
        grows while it keeps crashing (``RestartBackoff``), saying so each time."""
        now = time.monotonic()
        for process in self.processes:
            if not process.exited():
                continue
            name = process.spec.name
            due = self._restart_due.get(name)
            if due is None:
                backoff = self._backoffs.setdefault(name, RestartBackoff())
                delay = backoff.next_delay(now - process.started_at)
                self._restart_due[name] = now + delay
                status = process.proc.returncode if process.proc else "?"
                self._say(
                    f"{name} exited unexpectedly (status {status}); restarting it in {delay:.0f} s "
                    f"(restart {backoff.restarts}; log: {process.log_path})"
                )
            elif now >= due:
                del self._restart_due[name]
                await process.start()
                self._say(f"{name} restarted (pid {process.pid})")

    async def stop(self) -> None:
        """Stop every process, the last started first."""
        for process in reversed(self.processes):
            if not process.exited():
                self._say(f"stopping {process.spec.name}...")
            await process.stop()
        self.processes.clear()

    def endpoints(self) -> list[tuple[str, str]]:
        """What runs where, for the table ``mesh up`` prints."""
        s = self.settings
        credentials = s.state_dir / CREDENTIALS_FILE
        rows = []
        if s.web:
            rows.append(("web app", f"http://127.0.0.1:{s.web_port}/"))
            rows.append(("web sessions", f"redis://127.0.0.1:{s.valkey_port} (Valkey)"))
        rows += [
            ("REST API (Envoy)", f"http://127.0.0.1:{s.envoy_port}/v1/datasets"),
            ("API docs", f"http://127.0.0.1:{s.envoy_port}/docs/ (services, grpcurl and curl: /docs/services)"),
            ("gRPC via Envoy", f"127.0.0.1:{s.envoy_port}"),
            ("analytics gRPC", f"127.0.0.1:{s.analytics_port}"),
            ("llm gRPC", f"127.0.0.1:{s.llm_port}"),
            ("notify gRPC", f"127.0.0.1:{s.notify_port}"),
            ("mail catcher", f"http://127.0.0.1:{s.mail_http_port}/api/v1/messages (SMTP 127.0.0.1:{s.smtp_port})"),
            (
                "PostgreSQL",
                f"postgresql://postgres@127.0.0.1:{s.postgres_port}/ "
                f"(databases: {', '.join(SERVICE_DATABASES.values())}; password in {credentials})",
            ),
            (
                "NATS JetStream",
                f"nats://127.0.0.1:{s.nats_port} (user {NATS_USER}, password in {credentials}; "
                f"monitoring http://127.0.0.1:{s.nats_monitor_port}/)",
            ),
            ("Envoy admin", f"http://127.0.0.1:{s.envoy_admin_port}/"),
            *(
                [("trace viewer", f"http://127.0.0.1:{s.trace_viewer_port}/ (Phoenix; every process sends its spans)")]
                if self.telemetry_env
                else [("traces", f"sent to {traces_endpoint({**os.environ, **self.extra_env}) or 'nowhere (off)'}")]
            ),
            *((f"metrics: {name}", url) for name, url in self.metrics_urls().items()),
            (
                "analytics jobs",
                f"{s.analytics_schedulers} scheduler(s), {s.analytics_workers} worker(s) "
                "(MESH_ANALYTICS_SCHEDULERS / MESH_ANALYTICS_WORKERS)",
            ),
            ("logs", f"{s.state_dir / 'logs'}/"),
        ]
        return rows


def local_upstreams(s: StackSettings) -> list[envoy_config.Upstream]:
    """The services behind Envoy in the local stack."""
    return envoy_config.upstreams(
        {
            "analytics": ("127.0.0.1", s.analytics_port),
            "llm": ("127.0.0.1", s.llm_port),
            "notify": ("127.0.0.1", s.notify_port),
        }
    )
