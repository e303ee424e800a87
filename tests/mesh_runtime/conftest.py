"""Fixtures of the in-process server tests: a signing key folder and a
viewer's call metadata signed with it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mesh.auth.v1 import access_pb2
from mesh_runtime.auth import Principal
from mesh_runtime.auth_keys import KeyFolder, TokenSigner

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def keys(tmp_path: Path) -> KeyFolder:
    folder = KeyFolder(tmp_path / "auth")
    folder.ensure()
    return folder


@pytest.fixture
def auth(keys: KeyFolder) -> Metadata:
    """Call metadata signing a viewer in."""
    signer = TokenSigner.from_file(keys.signing_key, "test", "test")
    token = signer.mint(Principal("u1", "vera", access_pb2.ROLE_VIEWER), dt.timedelta(minutes=5)).token
    return (("authorization", f"Bearer {token}"),)
