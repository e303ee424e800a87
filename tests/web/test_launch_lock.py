"""The web launcher builds one at a time: a second launcher waits for the
build lock instead of deleting a build that another is still finishing (a
clean clone's second replica found ``web/.web`` without its marker and
deleted it under the first)."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import threading
from pathlib import Path
from types import ModuleType

from local_stack.paths import ROOT


def _launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_launch", ROOT / "web" / "launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_second_launcher_waits_for_the_build_lock_until_the_first_lets_it_go(tmp_path: Path) -> None:
    launch = _launcher()
    path = tmp_path / "build.lock"
    first = launch.build_lock(path)
    taken = threading.Event()

    def second() -> None:
        fd = launch.build_lock(path)
        taken.set()
        os.close(fd)

    thread = threading.Thread(target=second, daemon=True)
    thread.start()
    assert not taken.wait(1.0), "the second launcher went on while the first was building"
    os.close(first)
    assert taken.wait(30), "the second launcher never got the lock"
    thread.join(30)


def test_the_lock_is_free_again_once_its_holder_closes_it(tmp_path: Path) -> None:
    launch = _launcher()
    path = tmp_path / "build.lock"
    os.close(launch.build_lock(path))
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise BlockingIOError if still held
    finally:
        os.close(fd)
