"""The ``mesh`` command line (run through ./mesh, which prepares .venv first)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from mesh_cli.paths import ROOT, VENV_BIN

if TYPE_CHECKING:
    from mesh_cli.stack import Stack


def _up(args: argparse.Namespace) -> int:
    from mesh_cli.stack import Stack, StackError, StackSettings, resolve_ports
    from mesh_runtime.config import exit_on_config_error, load_settings

    with exit_on_config_error("mesh up"):
        settings = load_settings(StackSettings)
    if args.no_web:
        settings = type(settings)(**{**settings.__dict__, "web": False})
    try:
        settings = resolve_ports(settings)
    except StackError as exc:
        print(f"mesh up: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_run_stack(Stack(settings)))


async def _run_stack(stack: Stack) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.ensure_future(stack.start())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await stack.stop()
        print("mesh up: stopped before start-up finished", file=sys.stderr)
        return 130
    if start.exception() is not None:
        print(f"mesh up: {start.exception()}", file=sys.stderr)
        return 1
    from mesh_cli.accounts import first_admin_hint

    try:
        sign_in = await asyncio.to_thread(first_admin_hint, stack.settings, sys.stdin.isatty())
    except Exception as exc:  # noqa: BLE001 - the stack runs anyway; say why sign-in help is missing
        sign_in = f"could not check for an admin: {exc}"
    _print_table(stack, sign_in)
    code = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            dead = stack.exited_process()
            if dead is not None:
                print(
                    f"mesh up: {dead.spec.name} exited unexpectedly (status "
                    f"{dead.proc.returncode if dead.proc else '?'}); see {dead.log_path}. "
                    "Stopping everything.",
                    file=sys.stderr,
                )
                code = 1
                break
    print("\nmesh: stopping...", flush=True)
    await stack.stop()
    print("mesh: everything stopped.", flush=True)
    return code


def _print_table(stack: Stack, sign_in: str) -> None:
    rows = [*stack.endpoints(), ("sign in", sign_in)]
    width = max(len(name) for name, _ in rows)
    s = stack.settings
    lines = ["", "Analytics Mesh is running. Ctrl-C stops everything.", ""]
    lines += [f"  {name:<{width}}  {where}" for name, where in rows]
    lines += [
        "",
        "Try:",
        f"  grpcurl -plaintext 127.0.0.1:{s.analytics_port} list",
        "  TOKEN=$(./mesh token USER)",
        f"  curl -s -H \"authorization: Bearer $TOKEN\" http://127.0.0.1:{s.envoy_port}/v1/datasets",
        f"  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" 127.0.0.1:{s.analytics_port} "
        "mesh.analytics.v1.AnalyticsService/ListDatasets",
        "",
    ]
    print("\n".join(lines), flush=True)


def _test(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "pytest", *args.pytest_args]
    return subprocess.call(command, cwd=ROOT)


# Sizes `mesh bench all` runs each benchmark at: a few minutes for the lot.
# `mesh bench all --full` uses each benchmark's own defaults (the README's figures).
BENCH_ALL_SIZES = {
    "analyses_suite": ["--points", "1000000"],
    "ingest": ["--points", "200000"],
    "load_points": ["--points", "1000000"],
    "notify_throughput": ["--events", "200", "--light-events", "50"],
    "results_api": ["--results", "100000", "--seconds", "3"],
    "rpc_overhead": ["--calls", "5000"],
}


def _bench(args: argparse.Namespace) -> int:
    scripts = sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
    if args.name == "all":
        if args.bench_args not in ([], ["--full"]):
            print("mesh bench all: the only option is --full (each benchmark's own sizes)", file=sys.stderr)
            return 2
        failed = []
        for name in scripts:
            sizes = [] if args.bench_args else BENCH_ALL_SIZES.get(name, [])
            print(f"\n=== mesh bench {' '.join([name, *sizes])}", flush=True)
            if subprocess.call([sys.executable, str(ROOT / "bench" / f"{name}.py"), *sizes], cwd=ROOT) != 0:
                failed.append(name)
        if failed:
            print(f"mesh bench all: failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    if args.name not in scripts:
        print(
            f"mesh bench: no benchmark {args.name!r}; choose from: all, {', '.join(scripts)}", file=sys.stderr
        )
        return 2
    return subprocess.call([sys.executable, str(ROOT / "bench" / f"{args.name}.py"), *args.bench_args], cwd=ROOT)


def _deploy_script(name: str, *args: str) -> int:
    """Run one of deploy/'s generators (they render files the containers use)."""
    return subprocess.call([sys.executable, str(ROOT / "deploy" / name), *args], cwd=ROOT)


def _gen(args: argparse.Namespace) -> int:
    from mesh_cli import codegen

    if args.check:
        stale = codegen.stale_files()
        if stale:
            print("generated code is stale; run ./mesh gen. Differs: " + ", ".join(stale), file=sys.stderr)
        envoy_stale = _deploy_script("envoy_configs.py", "--check")
        if stale or envoy_stale:
            return 1
        print("generated code and the containers' Envoy configs are up to date")
        return 0
    for path in codegen.generate():
        print(f"wrote {path.relative_to(ROOT)}")
    # The containers' Envoy configs route what the protos declare: render them with the code.
    if _deploy_script("envoy_configs.py") != 0:
        return 1
    print("wrote deploy/compose/envoy.json, deploy/compose/envoy.prod.json")
    return 0


def _lock(args: argparse.Namespace) -> int:
    status = subprocess.call(
        [
            str(VENV_BIN / "uv"), "pip", "compile", "requirements.in",
            "--python-version", "3.11", "--generate-hashes", "--quiet",
            "--custom-compile-command", "./mesh lock",
            "-o", "requirements.lock", *(["--upgrade"] if args.upgrade else []),
        ],
        cwd=ROOT,
    )
    if status != 0:
        return status
    # Each image installs its share of the lock: re-pin those too.
    status = _deploy_script("image_requirements.py")
    if status == 0:
        print("wrote requirements.lock and deploy/requirements/*.txt")
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every mesh sub-command."""
    parser = argparse.ArgumentParser(
        prog="mesh", description="Analytics Mesh: run the local stack, tests and code generation."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="run the whole mesh locally (no containers) until Ctrl-C")
    up.add_argument("--no-web", action="store_true", help="do not start the web app")
    up.set_defaults(func=_up)
    test = sub.add_parser("test", help="run the test suite (arguments go to pytest)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=_test)
    gen = sub.add_parser("gen", help="regenerate code from the protos (and the containers' Envoy configs)")
    gen.add_argument("--check", action="store_true", help="only check the committed code is fresh")
    gen.set_defaults(func=_gen)
    bench = sub.add_parser("bench", help="run a benchmark from bench/ (e.g. rpc_overhead), or all of them")
    bench.add_argument("name")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)
    from mesh_cli import accounts

    accounts.add_commands(sub)
    lock = sub.add_parser("lock", help="re-pin requirements.lock (and each image's share) from requirements.in")
    lock.add_argument("--upgrade", action="store_true", help="take the newest allowed versions")
    lock.set_defaults(func=_lock)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a mesh sub-command; return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # pytest's and the benchmarks' own options (-x, -k NAME, --calls N) pass
    # through untouched, in order; argparse would reorder or reject them.
    if argv[:1] == ["test"] and "-h" not in argv[1:2] and "--help" not in argv[1:2]:
        args = argparse.Namespace(func=_test, pytest_args=argv[1:])
    elif argv[:1] == ["bench"] and len(argv) > 1 and not argv[1].startswith("-"):
        args = argparse.Namespace(func=_bench, name=argv[1], bench_args=argv[2:])
    else:
        args = parser.parse_args(argv)
        if args.command in ("user", "apikey", "token", "auth", "sample-data"):
            from mesh_cli import accounts

            return accounts.run(args.func, args, f"mesh {args.command}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(args.func(args))
