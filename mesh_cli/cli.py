"""The ``mesh`` command line (run through ./mesh, which prepares .venv first)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

from local_stack.paths import ROOT, VENV_BIN


def _up(args: argparse.Namespace) -> int:
    from local_stack.stack import Stack, StackError, StackSettings, resolve_ports
    from local_stack.up import run_until_stopped
    from mesh_cli.account_commands import first_admin_hint
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
    return asyncio.run(run_until_stopped(Stack(settings), first_admin_hint))


def _test(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "pytest", *args.pytest_args]
    return subprocess.call(command, cwd=ROOT)


# Sizes `mesh bench all` runs each benchmark at: a few minutes for the lot.
# `mesh bench all --full` uses each benchmark's own defaults (the README's figures).
BENCH_ALL_SIZES = {
    "analyses_suite": ["--points", "1000000"],
    "analysis_scale": ["--points", "5000000", "--sample", "1000000"],
    "forecast_quality": ["--windows", "2"],
    "points_core": ["--points", "1000000"],
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


# Commands that run or administer the local stack read the .env file; test,
# bench, gen and lock do not (a developer's settings must not change them).
_READS_ENV_FILE = ("up", "user", "apikey", "token", "auth", "sample-data")


def _read_env_file(prog: str) -> bool:
    """Add the settings of MESH_ENV_FILE (default: .env in the checkout) to the
    environment; a variable the environment already has keeps its value.
    False (after saying why) when MESH_ENV_FILE names a file that is not there."""
    from dotenv import load_dotenv

    named = os.environ.get("MESH_ENV_FILE", "")
    path = Path(named) if named else ROOT / ".env"
    if not path.exists() or path.is_dir():  # os.devnull is a valid empty file
        if named:
            print(f"{prog}: MESH_ENV_FILE names {path}, which is not a file", file=sys.stderr)
            return False
        return True
    load_dotenv(path, override=False, interpolate=False)
    return True


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
    from mesh_cli import account_commands

    account_commands.add_commands(sub)
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
        if args.command in _READS_ENV_FILE and not _read_env_file(f"mesh {args.command}"):
            return 2
        if args.command in ("user", "apikey", "token", "auth", "sample-data"):
            from mesh_cli import account_commands

            return account_commands.run(args.func, args, f"mesh {args.command}")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(args.func(args))
