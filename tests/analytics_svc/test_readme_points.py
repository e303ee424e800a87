"""The README's "Points" examples work as written: its "Try it" script runs
against the test stack (its addresses swapped in) and answers what it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from local_stack.paths import ROOT, VENV_BIN
from tests.conftest import RunningStack


def try_it_script() -> str:
    """The first sh block after "### Try it" in the README's "## Points" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Points\n") :]
    section = section[: section.index("\n## ", 1)]
    match = re.search(r"### Try it\n.*?```sh\n(.*?)```", section, re.S)
    assert match, "README: no ```sh block under ### Try it in ## Points"
    return match.group(1)


def json_documents(text: str) -> list[Any]:
    """The JSON values printed one after another (curl's compact ones, grpcurl's indented ones)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_the_try_it_script_runs_as_written(mesh: RunningStack, tmp_path: Path) -> None:
    name = f"readme-{uuid.uuid4().hex[:8]}"
    script = (
        try_it_script()
        .replace("http://127.0.0.1:18080", mesh.rest)
        .replace("127.0.0.1:50051", mesh.analytics)
        .replace("room-temperature", name)
    )
    token = mesh.tokens["analyst"]
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "TOKEN": token,
        "AUTH": f"authorization: Bearer {token}",
    }
    command = ["bash", "-e", "-o", "pipefail", "-c", script]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    (append, upload, imported, ingest, page, hourly, daily, weekly, dropped, deleted, retained, gone) = json_documents(
        run.stdout
    )
    assert append["acceptedCount"] == "2"
    assert (upload["acceptedCount"], upload["header"]) == ("3", "time,value")
    assert imported["dataset"]["pointCount"] == "5"  # the same file again: the last write wins
    assert ingest["acceptedCount"] == "1"
    assert page["points"]["timestampsUs"] == ["1714564800000000", "1714564860000000"] and page["nextPageToken"]
    assert hourly["buckets"]["max"] == [22.5, 22.25, 23.0]
    assert hourly["buckets"]["mean"][0] == (21.5 + 21.75 + 22.5) / 3
    assert (daily["buckets"]["count"], daily["buckets"]["last"]) == (["5"], [23.0])
    assert weekly["datasets"][0]["buckets"]["startTimesUs"] == ["1714348800000000"]  # Monday 2024-04-29
    assert dropped["deletedCount"] == "1" and deleted["deletedCount"] == "2"
    assert retained["dataset"]["retention"] == "2592000s"
    assert gone == {}
    export = (tmp_path / f"{name}.csv").read_text().splitlines()
    assert export[:2] == ["timestamp,value", "1969-07-20T20:17:40.000000Z,19.5"] and len(export) == 7
