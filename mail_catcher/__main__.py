"""python -m mail_catcher: SMTP on one port, mailpit-style HTTP API on another.

Flags default from MAIL_CATCHER_* variables. Port 0 picks a free port; with
--ready-file the bound ports are written there as JSON once listening.
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
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from mail_catcher.http_api import create_app
from mail_catcher.smtp import smtp_factory
from mail_catcher.store import MessageStore
from mesh_runtime.structured_logging import configure_logging

logger = logging.getLogger("mail_catcher")


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        _fail(f"{name}: expected a port number, got {raw!r}")
    if not 0 <= port <= 65535:
        _fail(f"{name}: expected a port between 0 and 65535, got {raw!r}")
    return port


def _fail(message: str) -> None:
    print(f"mail_catcher: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options, defaulting from the environment."""
    parser = argparse.ArgumentParser(prog="mail_catcher", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MAIL_CATCHER_HOST", "127.0.0.1"))
    parser.add_argument("--smtp-port", type=int, default=_env_port("MAIL_CATCHER_SMTP_PORT", 1025))
    parser.add_argument("--http-port", type=int, default=_env_port("MAIL_CATCHER_HTTP_PORT", 8025))
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MAIL_CATCHER_DATA_DIR") or None)
    parser.add_argument("--max-messages", type=int, default=5000)
    parser.add_argument("--max-size", type=int, default=10 * 1024 * 1024, help="largest message, bytes")
    parser.add_argument("--ready-file", type=Path, default=None)
    args = parser.parse_args(argv)
    for flag in ("smtp_port", "http_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag.replace('_', '-')} must be between 0 and 65535")
    if args.max_messages < 1 or args.max_size < 1024:
        parser.error("--max-messages must be at least 1 and --max-size at least 1024")
    return args


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn sharing our event loop: our loop handles SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(args: argparse.Namespace) -> None:
    """Run both servers until SIGTERM/SIGINT."""
    store = MessageStore(args.data_dir, args.max_messages)
    loop = asyncio.get_running_loop()
    try:
        smtp_server = await loop.create_server(smtp_factory(store, args.max_size), args.host, args.smtp_port)
    except OSError as exc:
        _fail(f"cannot listen for SMTP on {args.host}:{args.smtp_port}: {exc.strerror}")
    smtp_port = smtp_server.sockets[0].getsockname()[1]

    config = uvicorn.Config(create_app(store), host=args.host, port=args.http_port, log_level="warning")
    http_server = _EmbeddedServer(config)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.http_port))
    except OSError as exc:
        smtp_server.close()
        _fail(f"cannot listen for HTTP on {args.host}:{args.http_port}: {exc.strerror}")
    http_port = sock.getsockname()[1]
    http_task = asyncio.ensure_future(http_server.serve(sockets=[sock]))
    while not http_server.started:
        if http_task.done():
            http_task.result()
        await asyncio.sleep(0.02)

    logger.info("listening", extra={"smtp_port": smtp_port, "http_port": http_port})
    if args.ready_file is not None:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"smtp_port": smtp_port, "http_port": http_port}))
        os.replace(tmp, args.ready_file)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    smtp_server.close()
    http_server.should_exit = True
    await asyncio.gather(smtp_server.wait_closed(), http_task, return_exceptions=True)


def main() -> None:
    """Entry point."""
    args = parse_args()
    configure_logging("mail", "info", os.environ.get("MESH_LOG_FORMAT", "text"))
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
