"""Fixtures of the analytics store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from analytics_svc import schema
from mesh_runtime.database import connect
from tests.conftest import RunningStack


@pytest.fixture(scope="module")
def bound_store(mesh: RunningStack) -> Iterator[None]:
    """The analytics store bound to the stack's database for a module's tests, a
    connection open. Four connections: a test's writer threads commit on their
    own while a load or another writer is under way."""
    db = connect(mesh.database_url("analytics"), max_connections=4)
    schema.bind(db)
    with db.connection_context():
        yield
