"""Upgrading an existing analytics database: data written under an older schema
survives, new tables appear, and replicas starting together migrate once."""

from __future__ import annotations

import io
import secrets
import threading
import uuid
from collections.abc import Iterator

import numpy as np
import peewee
import pytest

from analytics_svc import schema
from analytics_svc.auth import store as auth_store
from analytics_svc.datasets import store as dataset_store
from analytics_svc.jobs import outbox
from analytics_svc.points import chunks
from analytics_svc.results import store as result_store
from analytics_svc.schedules import store as schedule_store
from analytics_svc.schema import MIGRATIONS
from local_stack import infra
from mesh.analytics.v1 import analysis_pb2
from mesh_runtime.database import connect, migrate
from tests.conftest import RunningStack


@pytest.fixture
def fresh_dsn(mesh: RunningStack) -> Iterator[str]:
    name = f"migrate_{secrets.token_hex(4)}"
    infra.ensure_databases(mesh.settings.postgres_port, [name], mesh.stack.credentials.postgres_password)
    yield mesh.database_url(name)


def _tables(db: peewee.Database) -> set[str]:
    return set(db.get_tables())


def test_upgrading_keeps_the_data_of_the_older_schema(fresh_dsn: str) -> None:
    db = connect(fresh_dsn, max_connections=2)
    older = [m for m in MIGRATIONS if m.version <= 3]
    assert migrate(db, older) == [1, 2, 3]
    with db.connection_context():
        db.execute_sql(
            "INSERT INTO dataset (id, name, description, unit, labels, point_count, create_time, update_time)"
            " VALUES ('00000000-0000-0000-0000-000000000001', 'legacy', 'kept', 'ms', '{}', 2, now(), now())"
        )
        db.execute_sql(
            "INSERT INTO point (dataset_id, ts, value) VALUES"
            " ('00000000-0000-0000-0000-000000000001', '2024-01-01T00:00:00Z', 1.5),"
            " ('00000000-0000-0000-0000-000000000001', '2024-01-01T00:01:00Z', 2.5)"
        )
        assert "analysis_result" not in _tables(db)

    # Version 4 stored a result's numbers as JSON; version 5 converts them to protobuf.
    assert migrate(db, [m for m in MIGRATIONS if m.version <= 4]) == [4]
    with db.connection_context():
        db.execute_sql(
            "INSERT INTO analysis_result (id, dataset_id, dataset_name, kind, parameters, status, error,"
            " requested_by, create_time, enqueue_time, attempts, anomaly_count, output, insight_status,"
            " insight_text, insight_provider, insight_model, insight_error, insight_attempts) VALUES"
            " ('00000000-0000-0000-0000-0000000000aa', '00000000-0000-0000-0000-000000000001', 'legacy', 1, '{}',"
            " 3, '', 'old', now(), now(), 1, 0, %s, 0, '', '', '', '', 0)",
            ('{"summary": {"count": "2", "mean": 2.0, "max": 2.5}, "quantiles": [{"level": 0.5, "value": 2.0}]}',),
        )
    newer = [m.version for m in MIGRATIONS if m.version > 4]
    assert migrate(db, MIGRATIONS) == newer
    assert migrate(db, MIGRATIONS) == []  # idempotent
    with db.connection_context():
        assert {"analysis_schedule", "analysis_result", "outbox"} <= _tables(db)
        rows = db.execute_sql("SELECT d.name, d.description, sum(c.point_count), sum(c.value_sum) FROM dataset d"
                              " JOIN point_chunk c ON c.dataset_id = d.id GROUP BY 1, 2").fetchall()
        assert rows == [("legacy", "kept", 2, 4.0)]
        (stored,) = db.execute_sql("SELECT output FROM analysis_result").fetchone()
        output = analysis_pb2.ResultOutput.FromString(bytes(stored))
        assert (output.summary.count, output.summary.max, output.quantiles[0].value) == (2, 2.5, 2.0)
        # The migrated schema is what the models declare: columns and every index.
        models = (dataset_store.DatasetRow, auth_store.UserRow, auth_store.RefreshTokenRow, auth_store.ApiKeyRow,
                  auth_store.TokenRevocationRow, auth_store.LoginAttemptRow,
                  schedule_store.ScheduleRow, result_store.ResultRow, outbox.OutboxRow)
        for model in models:
            table = model._meta.table_name
            columns = {c.name for c in db.get_columns(table)}
            assert columns == {f.column_name for f in model._meta.sorted_fields}, table
            declared = {index._name for index in model._meta.fields_to_index()}
            stored = {i.name for i in db.get_indexes(table)} - {f"{table}_pkey"}
            assert stored == declared, table
        # Every ListResults filter has its index.
        indexes = {row[0] for row in db.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'analysis_result'"
        ).fetchall()}
        for column in ("dataset_id", "kind", "status", "anomaly_count > 0", "COALESCE(start_time"):
            assert any(column in definition for definition in indexes), column
    db.close_all()


def test_replicas_starting_together_apply_each_migration_once(fresh_dsn: str) -> None:
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            applied.append(migrate(connect(fresh_dsn, max_connections=1), MIGRATIONS))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]


def _chunked_points(db: peewee.Database, dataset_id: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A dataset's points decoded from its chunk rows, and the chunks' windows."""
    rows = db.execute_sql(
        "SELECT start_us, end_us, point_count, ts_data, value_data FROM point_chunk WHERE dataset_id = %s"
        " ORDER BY start_us",
        (dataset_id,),
    ).fetchall()
    decoded = [chunks.decode(bytes(t), bytes(v), count) for _, _, count, t, v in rows]
    ts = np.concatenate([d[0] for d in decoded]) if decoded else np.empty(0, np.int64)
    values = np.concatenate([d[1] for d in decoded]) if decoded else np.empty(0)
    return ts, values, [(start, end) for start, end, *_ in rows]


def test_points_of_the_row_table_move_into_chunks_unchanged(fresh_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small slices, so a dataset is moved in many and a chunk window spans two.
    monkeypatch.setattr(schema, "_CONVERT_SLICE", 7_000)
    db = connect(fresh_dsn, max_connections=2)
    assert migrate(db, [m for m in MIGRATIONS if m.version <= 6]) == [1, 2, 3, 4, 5, 6]
    rng = np.random.default_rng(8)
    regular = 1_700_000_000_000_000 + np.arange(30_000, dtype=np.int64) * 1_000_000
    # Sparse over the old range (1970..2262), with a burst of consecutive microseconds.
    burst = 1_650_000_000_000_000 + np.arange(20_000, dtype=np.int64)
    sparse = np.sort(rng.choice(9_000_000_000_000_000, 3_000, replace=False)).astype(np.int64)
    series = {
        "regular": (regular, np.round(rng.normal(20, 3, regular.size), 3)),
        "bursty": (np.unique(np.concatenate([[0], sparse, burst])), None),
        "empty": (np.empty(0, np.int64), np.empty(0)),
    }
    ids = {}
    with db.connection_context():
        for name, (ts, values) in series.items():
            if values is None:
                values = rng.normal(0, 1e6, ts.size)
                values[:3] = [-0.0, 5e-324, -1e308]
                series[name] = (ts, values)
            ids[name] = str(uuid.uuid4())
            db.execute_sql(
                "INSERT INTO dataset (id, name, description, unit, labels, point_count, first_point_time,"
                " last_point_time, create_time, update_time) VALUES (%s, %s, '', '', '{}', %s,"
                " to_timestamp(%s / 1e6), to_timestamp(%s / 1e6), now(), now())",
                (ids[name], name, ts.size, int(ts[0]) if ts.size else None, int(ts[-1]) if ts.size else None),
            )
            stamps = np.datetime_as_string(ts.astype("datetime64[us]"), unit="us")
            text = "".join(f"{ids[name]}\t{s}Z\t{v!r}\n" for s, v in zip(stamps, values.tolist(), strict=True))
            db.cursor().copy_expert("COPY point (dataset_id, ts, value) FROM STDIN", io.StringIO(text))
        before = db.execute_sql("SELECT id, point_count, first_point_time, last_point_time FROM dataset").fetchall()

    assert migrate(db, MIGRATIONS) == [m.version for m in MIGRATIONS if m.version > 6]
    with db.connection_context():
        assert "point" not in _tables(db)
        after = db.execute_sql("SELECT id, point_count, first_point_time, last_point_time FROM dataset").fetchall()
        assert sorted(after) == sorted(before)
        for name, (ts, values) in series.items():
            got_ts, got_values, windows = _chunked_points(db, ids[name])
            np.testing.assert_array_equal(got_ts, ts, err_msg=name)
            assert got_values.tobytes() == values.tobytes(), name  # bit for bit
            assert all(a[1] <= b[0] for a, b in zip(windows, windows[1:], strict=False)), name  # no overlap
            (width,) = db.execute_sql("SELECT chunk_width_us FROM dataset WHERE id = %s", (ids[name],)).fetchone()
            assert (width is None) == (ts.size == 0)
        # Chunks stay bounded however bunched the points were (the burst is cut narrower).
        counts = [row[0] for row in db.execute_sql("SELECT point_count FROM point_chunk").fetchall()]
        assert max(counts) <= chunks.TARGET_POINTS
    db.close_all()
