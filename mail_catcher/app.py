"""Settings and the process: SMTP and the HTTP API on one asyncio event loop.

Each flag defaults from a MAIL_CATCHER_* variable (--ignore-duplicate-ids from
mailpit's MP_IGNORE_DUPLICATE_IDS, so one setting serves both). Port 0 picks a free port;
once both servers listen, one log line gives the ports, and with
--ready-file they are also written there as JSON (atomically) for a
supervisor. A bad setting, or a port that cannot be had, ends the process
with exit code 2 and one line on stderr. SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import NoReturn

import uvicorn

from mail_catcher.http_api import create_app
from mail_catcher.smtp import DEFAULT_MAX_SIZE, smtp_factory
from mail_catcher.store import DEFAULT_MAX_MESSAGES, MessageStore
from mesh_runtime.structured_logging import configure_logging

logger = logging.getLogger("mail_catcher")

EXIT_CONFIG = 2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SHUTDOWN_TIMEOUT = 10.0


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line for stderr."""


@dataclass(frozen=True)
class Settings:
    """How to run the catcher."""

    host: str = "127.0.0.1"
    smtp_port: int = 1025
    http_port: int = 8025
    data_dir: Path | None = None
    max_messages: int = DEFAULT_MAX_MESSAGES
    max_size: int = DEFAULT_MAX_SIZE
    ready_file: Path | None = None
    ignore_duplicate_ids: bool = False
    # field name -> where its value came from (flag or environment variable), for error messages
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        """The flag or environment variable that set ``name`` (its flag when defaulted)."""
        return self.sources.get(name, "--" + name.replace("_", "-"))


DESCRIPTION = (
    "SMTP catcher: keeps every message it receives and shows it over HTTP "
    "with (part of) mailpit's API v1. Each flag defaults from the environment variable named in its help."
)

# flag -> (Settings field, environment variable or None, help)
_OPTIONS: dict[str, tuple[str, str | None, str]] = {
    "--host": ("host", "MAIL_CATCHER_HOST", "address to listen on (default 127.0.0.1)"),
    "--smtp-port": ("smtp_port", "MAIL_CATCHER_SMTP_PORT", "SMTP port, 0 for a free one (default 1025)"),
    "--http-port": ("http_port", "MAIL_CATCHER_HTTP_PORT", "HTTP API port, 0 for a free one (default 8025)"),
    "--data-dir": ("data_dir", "MAIL_CATCHER_DATA_DIR", "keep messages in this directory too (default: memory only)"),
    "--max-messages": ("max_messages", "MAIL_CATCHER_MAX_MESSAGES", "messages kept, oldest dropped (default 5000)"),
    "--max-size": ("max_size", "MAIL_CATCHER_MAX_SIZE", "largest accepted message in bytes (default 10 MiB)"),
    "--ready-file": ("ready_file", None, 'once listening, write {"smtp_port": .., "http_port": ..} here'),
}
# Switches (no value), each with its environment variable: flag -> (field, variable, help).
_SWITCHES: dict[str, tuple[str, str, str]] = {
    "--ignore-duplicate-ids": (
        "ignore_duplicate_ids",
        "MP_IGNORE_DUPLICATE_IDS",
        "keep no second message with a Message-ID a kept message has (the sender still hears 250), "
        "as mailpit's option of the same name; env MP_IGNORE_DUPLICATE_IDS=true",
    ),
}
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _port(raw: str, source: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{source}: expected a port number (0-65535, 0 picks a free one), got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port must be between 0 and 65535 (0 picks a free one), got {port}")
    return port


def _positive(raw: str, source: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{source}: expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{source}: must be at least 1, got {value}")
    return value


def _switch(raw: str, source: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigError(f"{source}: expected true or false (or 1/0, yes/no), got {raw!r}")


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the command line, each defaulting from its environment variable.

    Raises ConfigError, naming the flag or variable, for a value that cannot be used.
    """
    environ = os.environ if environ is None else environ
    parser = _Parser(prog="python -m mail_catcher", description=DESCRIPTION)
    for flag, (dest, env, help_text) in _OPTIONS.items():
        parser.add_argument(flag, dest=dest, metavar=dest.upper(), help=f"{help_text}; env {env}" if env else help_text)
    for flag, (dest, _, help_text) in _SWITCHES.items():
        parser.add_argument(flag, dest=dest, action="store_true", default=None, help=help_text)
    args = parser.parse_args(argv)

    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for flag, (dest, env, _) in _OPTIONS.items():
        raw: str | None = getattr(args, dest)
        source = flag
        if raw is None and env is not None and environ.get(env, "").strip():
            raw, source = environ[env].strip(), env
        if raw is None:
            continue
        sources[dest] = source
        if dest in ("smtp_port", "http_port"):
            values[dest] = _port(raw, source)
        elif dest in ("max_messages", "max_size"):
            values[dest] = _positive(raw, source)
        elif dest in ("data_dir", "ready_file"):
            if not raw.strip():
                raise ConfigError(f"{source}: expected a path, got an empty value")
            values[dest] = Path(raw)
        elif not raw.strip():
            raise ConfigError(f"{source}: expected a host name or address, got an empty value")
        else:
            values[dest] = raw.strip()
    for flag, (dest, env, _) in _SWITCHES.items():
        if getattr(args, dest):
            values[dest], sources[dest] = True, flag
        elif environ.get(env, "").strip():
            values[dest], sources[dest] = _switch(environ[env], env), env
    return Settings(**values, sources=sources)  # type: ignore[arg-type]


class StartupError(Exception):
    """The catcher could not start; the message is one line for stderr."""


def _listen(what: str, host: str, port: int, *, host_source: str, port_source: str) -> socket.socket:
    """A listening TCP socket on the first address ``host`` resolves to (so port 0 means one port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise StartupError(f"cannot resolve host {host!r} ({host_source}): {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart without waiting for TIME_WAIT
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise StartupError(f"cannot listen for {what} on {host}:{port} ({port_source}): {reason}") from None
    sock.setblocking(False)
    return sock


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: the catcher owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _write_ready_file(path: Path, smtp_port: int, http_port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"smtp_port": smtp_port, "http_port": http_port}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


async def serve(settings: Settings, stop_signals: Sequence[int] = ()) -> None:
    """Run both servers until SIGTERM or SIGINT. Raises StartupError if they cannot start.

    ``stop_signals`` non-empty means one already came before the loop took them over.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if stop_signals:
        return

    try:
        store = await asyncio.to_thread(
            MessageStore,
            settings.data_dir,
            settings.max_messages,
            ignore_duplicate_ids=settings.ignore_duplicate_ids,
        )
    except OSError as exc:
        reason = exc.strerror or exc
        where = settings.source("data_dir")
        raise StartupError(f"cannot use data directory {settings.data_dir} ({where}): {reason}") from None

    async with contextlib.AsyncExitStack() as stack:
        host, host_source = settings.host, settings.source("host")
        smtp_sock = _listen(
            "SMTP", host, settings.smtp_port, host_source=host_source, port_source=settings.source("smtp_port")
        )
        stack.callback(smtp_sock.close)
        http_sock = _listen(
            "HTTP", host, settings.http_port, host_source=host_source, port_source=settings.source("http_port")
        )
        stack.callback(http_sock.close)
        smtp_port, http_port = smtp_sock.getsockname()[1], http_sock.getsockname()[1]

        smtp_server = await loop.create_server(smtp_factory(store, settings.max_size), sock=smtp_sock)
        stack.callback(smtp_server.close)

        config = uvicorn.Config(
            create_app(store),
            log_config=None,  # our handlers, our format
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        http_server = _HttpServer(config)
        http_task = asyncio.create_task(http_server.serve(sockets=[http_sock]))

        async def stop_http() -> None:
            http_server.should_exit = True
            with contextlib.suppress(Exception, SystemExit):
                await asyncio.wait_for(http_task, SHUTDOWN_TIMEOUT)

        stack.push_async_callback(stop_http)
        while not http_server.started:
            if http_task.done():
                raise StartupError(f"the HTTP server on {settings.host}:{http_port} stopped while starting")
            await asyncio.sleep(0.01)

        if settings.ready_file is not None:
            try:
                _write_ready_file(settings.ready_file, smtp_port, http_port)
            except OSError as exc:
                reason = exc.strerror or exc
                raise StartupError(f"cannot write {settings.ready_file} (--ready-file): {reason}") from None
            stack.callback(settings.ready_file.unlink, missing_ok=True)

        total, _ = store.counts()
        logger.info(
            "listening",
            extra={
                "host": settings.host,
                "smtp_port": smtp_port,
                "http_port": http_port,
                "data_dir": str(settings.data_dir) if settings.data_dir else "(memory only)",
                "messages": total,
                "ignore_duplicate_ids": settings.ignore_duplicate_ids,
            },
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, http_task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if http_task.done() and not stop.is_set():
            logger.error("the HTTP server stopped unexpectedly; shutting down")
        logger.info("stopping")


def main(argv: Sequence[str] | None = None, stop_signals: list[int] | None = None) -> int:
    """``python -m mail_catcher``: returns the exit status.

    Until the event loop takes them over, SIGTERM and SIGINT are only noted
    (in ``stop_signals``, which may already hold some) and the process then
    exits 0 at the next step instead of serving.
    """
    noted: list[int] = [] if stop_signals is None else stop_signals

    def remember(signum: int, frame: FrameType | None) -> None:
        noted.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, remember)
    if noted:
        return 0
    try:
        settings = parse_settings(argv)
    except ConfigError as exc:
        sys.stderr.write(f"mail_catcher: error: {exc}\n")
        return EXIT_CONFIG
    configure_logging("mail", "info", os.environ.get("MESH_LOG_FORMAT", "text"))
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    try:
        asyncio.run(serve(settings, noted))
    except StartupError as exc:
        sys.stderr.write(f"mail_catcher: error: {exc}\n")
        return EXIT_CONFIG
    return 0
