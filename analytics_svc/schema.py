"""The analytics database: the models' base class, the database they use, and every migration.

Each capability keeps its peewee models beside its queries (``datasets/``,
``points/``, results, auth, ...); the tables they live in are created and
changed by the migrations listed here, once, in order. A migration is frozen
SQL (or a function) as the schema was then: later changes to a model get a
migration of their own, and tests check that a migrated database has every
column and index the models declare.
"""

from __future__ import annotations

import peewee

from mesh_runtime.database import Migration, sql_migration

database_proxy = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    """Models of this service live in its own database."""

    class Meta:
        database = database_proxy


def notify(channel: str, payload: str) -> None:
    """pg_notify, delivered to listeners when the caller's transaction commits."""
    database_proxy.execute_sql("SELECT pg_notify(%s, %s)", (channel, payload))


def bind(db: peewee.Database) -> None:
    """Point this service's models at ``db``."""
    database_proxy.initialize(db)


_DATASETS_V1 = """
CREATE TABLE "dataset" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "unit" TEXT NOT NULL,
    "labels" JSONB NOT NULL,
    "point_count" BIGINT NOT NULL,
    "first_point_time" TIMESTAMPTZ,
    "last_point_time" TIMESTAMPTZ,
    "create_time" TIMESTAMPTZ NOT NULL,
    "update_time" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "datasetrow_name" ON "dataset" ("name");
CREATE INDEX "datasetrow_labels" ON "dataset" USING GIN ("labels");
"""



_AUTH_V2 = """
CREATE TABLE "app_user" (
    "id" UUID NOT NULL PRIMARY KEY,
    "username" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" SMALLINT NOT NULL,
    "disabled" BOOLEAN NOT NULL,
    "sessions_valid_after" TIMESTAMPTZ NOT NULL,
    "create_time" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "userrow_username" ON "app_user" ("username");
CREATE TABLE "refresh_token" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL,
    "token_digest" TEXT NOT NULL,
    "expire_time" TIMESTAMPTZ NOT NULL,
    "revoked" BOOLEAN NOT NULL,
    "create_time" TIMESTAMPTZ NOT NULL,
    FOREIGN KEY ("user_id") REFERENCES "app_user" ("id") ON DELETE CASCADE
);
CREATE INDEX "refreshtokenrow_user_id" ON "refresh_token" ("user_id");
CREATE UNIQUE INDEX "refreshtokenrow_token_digest" ON "refresh_token" ("token_digest");
CREATE TABLE "api_key" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "role" SMALLINT NOT NULL,
    "prefix" TEXT NOT NULL,
    "secret_digest" TEXT NOT NULL,
    "revoked" BOOLEAN NOT NULL,
    "create_time" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "apikeyrow_prefix" ON "api_key" ("prefix");
CREATE INDEX "apikeyrow_create_time" ON "api_key" ("create_time");
"""


# One row per (dataset, timestamp): a repeated timestamp replaces the value.
_POINTS_V3 = """
CREATE TABLE point (
    dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (dataset_id, ts)
);
"""




# The schema of migration 4, frozen as SQL (generated from the models as they
# were then): later changes to the models get migrations of their own, and
# tests check that a migrated database has every index the models declare.
_SCHEMA_V4 = """
CREATE TABLE "analysis_schedule" (
    "id" UUID NOT NULL PRIMARY KEY,
    "dataset_id" UUID NOT NULL,
    "kind" SMALLINT NOT NULL,
    "parameters" JSONB NOT NULL,
    "interval_seconds" BIGINT,
    "cron" TEXT,
    "time_zone" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL,
    "next_run_time" TIMESTAMPTZ,
    "last_run_time" TIMESTAMPTZ,
    "last_result_id" UUID,
    "create_time" TIMESTAMPTZ NOT NULL,
    "update_time" TIMESTAMPTZ NOT NULL,
    FOREIGN KEY ("dataset_id") REFERENCES "dataset" ("id") ON DELETE CASCADE
);
CREATE INDEX "schedulerow_enabled_next_run_time" ON "analysis_schedule" ("enabled", "next_run_time");
CREATE INDEX "schedulerow_dataset_id_create_time_id" ON "analysis_schedule" ("dataset_id", "create_time", "id");
CREATE INDEX "schedulerow_create_time_id" ON "analysis_schedule" ("create_time", "id");
CREATE TABLE "analysis_result" (
    "id" UUID NOT NULL PRIMARY KEY,
    "dataset_id" UUID NOT NULL,
    "dataset_name" TEXT NOT NULL,
    "kind" SMALLINT NOT NULL,
    "parameters" JSONB NOT NULL,
    "status" SMALLINT NOT NULL,
    "error" TEXT NOT NULL,
    "schedule_id" UUID,
    "scheduled_time" TIMESTAMPTZ,
    "requested_by" TEXT NOT NULL,
    "create_time" TIMESTAMPTZ NOT NULL,
    "start_time" TIMESTAMPTZ,
    "end_time" TIMESTAMPTZ,
    "heartbeat_time" TIMESTAMPTZ,
    "enqueue_time" TIMESTAMPTZ NOT NULL,
    "attempts" INTEGER NOT NULL,
    "window_start" TIMESTAMPTZ,
    "window_end" TIMESTAMPTZ,
    "anomaly_count" BIGINT NOT NULL,
    "output" JSONB,
    "insight_status" SMALLINT NOT NULL,
    "insight_text" TEXT NOT NULL,
    "insight_provider" TEXT NOT NULL,
    "insight_model" TEXT NOT NULL,
    "insight_error" TEXT NOT NULL,
    "insight_attempts" INTEGER NOT NULL,
    "insight_update_time" TIMESTAMPTZ,
    "insight_next_attempt" TIMESTAMPTZ,
    FOREIGN KEY ("dataset_id") REFERENCES "dataset" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("schedule_id") REFERENCES "analysis_schedule" ("id") ON DELETE SET NULL
);
CREATE UNIQUE INDEX "resultrow_schedule_id_scheduled_time" ON "analysis_result" ("schedule_id", "scheduled_time");
CREATE INDEX "resultrow_dataset_id_create_time_id" ON "analysis_result" ("dataset_id", "create_time", "id");
CREATE INDEX "resultrow_kind_create_time_id" ON "analysis_result" ("kind", "create_time", "id");
CREATE INDEX "resultrow_status_create_time_id" ON "analysis_result" ("status", "create_time", "id");
CREATE INDEX "resultrow_create_time_id" ON "analysis_result" ("create_time", "id");
CREATE INDEX "analysis_result_anomalous" ON "analysis_result" ("create_time", "id") WHERE ("anomaly_count" > 0);
CREATE INDEX "analysis_result_start_sort" ON "analysis_result" (COALESCE("start_time", 'infinity'::timestamptz), "id");
CREATE INDEX "analysis_result_unfinished" ON "analysis_result" ("status", "heartbeat_time") WHERE ("status" IN (1, 2));
CREATE INDEX "analysis_result_insight_due" ON "analysis_result" ("insight_next_attempt") WHERE ("insight_status" = 1);
CREATE TABLE "outbox" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "message_id" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "payload" BYTEA NOT NULL,
    "result_id" UUID,
    "create_time" TIMESTAMPTZ NOT NULL,
    "available_time" TIMESTAMPTZ NOT NULL,
    "publish_time" TIMESTAMPTZ,
    "attempts" INTEGER NOT NULL
);
CREATE INDEX "outbox_unpublished" ON "outbox" ("available_time", "id") WHERE ("publish_time" IS NULL);
CREATE INDEX "outbox_result" ON "outbox" ("result_id") WHERE ("result_id" IS NOT NULL);
CREATE INDEX "outbox_published" ON "outbox" ("publish_time");
"""


def _outputs_as_protobuf(db: peewee.Database) -> None:
    """Store results' numbers as serialized ResultOutput instead of JSON, converting every stored row."""
    from google.protobuf import json_format

    from mesh.analytics.v1 import analysis_pb2

    db.execute_sql("ALTER TABLE analysis_result ADD COLUMN output_pb BYTEA")
    rows = db.execute_sql("SELECT id, output FROM analysis_result WHERE output IS NOT NULL").fetchall()
    for row_id, output in rows:
        message = json_format.ParseDict(output, analysis_pb2.ResultOutput(), ignore_unknown_fields=True)
        db.execute_sql("UPDATE analysis_result SET output_pb = %s WHERE id = %s", (message.SerializeToString(), row_id))
    db.execute_sql("ALTER TABLE analysis_result DROP COLUMN output")
    db.execute_sql("ALTER TABLE analysis_result RENAME COLUMN output_pb TO output")


# A dataset's page filtered by kind, status or anomalies read the dataset's
# whole history through the dataset index before; these serve it directly.
_DATASET_FILTER_INDEXES_V6 = """
CREATE INDEX "resultrow_dataset_id_kind_create_time_id"
    ON "analysis_result" ("dataset_id", "kind", "create_time", "id");
CREATE INDEX "resultrow_dataset_id_status_create_time_id"
    ON "analysis_result" ("dataset_id", "status", "create_time", "id");
CREATE INDEX "analysis_result_dataset_anomalous"
    ON "analysis_result" ("dataset_id", "create_time", "id") WHERE ("anomaly_count" > 0);
"""


# A dataset's points as time-aligned chunks of pcodec bytes with their
# summaries (analytics_svc.points). The bytes are compressed already:
# STORAGE EXTERNAL keeps TOAST from trying again. A dataset's chunk width is
# chosen from its density on its first write (points.chunks).
_POINT_CHUNKS_V7 = """
CREATE TABLE point_chunk (
    dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
    start_us bigint NOT NULL,
    end_us bigint NOT NULL,
    point_count integer NOT NULL,
    first_us bigint NOT NULL,
    last_us bigint NOT NULL,
    first_value double precision NOT NULL,
    last_value double precision NOT NULL,
    min_value double precision NOT NULL,
    max_value double precision NOT NULL,
    value_sum double precision NOT NULL,
    ts_data bytea NOT NULL,
    value_data bytea NOT NULL,
    PRIMARY KEY (dataset_id, start_us),
    CHECK (start_us <= first_us AND first_us <= last_us AND last_us < end_us AND point_count > 0)
);
ALTER TABLE point_chunk ALTER COLUMN ts_data SET STORAGE EXTERNAL, ALTER COLUMN value_data SET STORAGE EXTERNAL;
ALTER TABLE dataset ADD COLUMN chunk_width_us bigint;
"""

# Points of the one-row-per-point table are read per dataset in slices of this many.
_CONVERT_SLICE = 1 << 22


def _points_into_chunks(db: peewee.Database) -> None:
    """Move every point of the point table into chunks, dataset by dataset, then drop the table.

    Each dataset's points are read in time order in bounded slices (binary
    COPY), cut into chunks of the width its density calls for, and written
    with binary COPY; a slice ends on a chunk edge so no window is written
    twice. Fails (and the migration with it) unless every point moved.
    """
    import io
    import uuid

    import numpy as np

    from analytics_svc.points import chunks, pgcopy

    # A binary COPY row of (timestamptz, float8); timestamptz counts µs from 2000-01-01.
    row = np.dtype([("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("value_len", ">i4"), ("value", ">f8")])
    since_2000 = 946_684_800_000_000
    cursor = db.cursor()
    cursor.execute(
        "SELECT dataset_id, count(*), (extract(epoch FROM min(ts)) * 1000000)::bigint,"
        " (extract(epoch FROM max(ts)) * 1000000)::bigint FROM point GROUP BY dataset_id"
    )
    for dataset_id, count, first_us, last_us in cursor.fetchall():
        key = uuid.UUID(str(dataset_id))
        width = chunks.width_for_density(count, last_us - first_us)
        narrowest, moved = width, 0
        carry_ts, carry_values = np.empty(0, np.int64), np.empty(0, np.float64)
        after_us = first_us - 1
        while True:
            seconds, micros = divmod(after_us, 1_000_000)
            buffer = io.BytesIO()
            cursor.copy_expert(
                cursor.mogrify(
                    "COPY (SELECT ts, value FROM point WHERE dataset_id = %s"
                    " AND ts > to_timestamp(%s) + %s * interval '1 microsecond' ORDER BY ts LIMIT %s)"
                    " TO STDOUT WITH BINARY",
                    [str(key), seconds, micros, _CONVERT_SLICE],
                ).decode(),
                buffer,
            )
            rows = np.frombuffer(buffer.getbuffer()[19:-2], dtype=row)  # past the header, before the trailer
            final = rows.size < _CONVERT_SLICE
            ts = np.concatenate([carry_ts, rows["ts"].astype(np.int64) + since_2000])
            values = np.concatenate([carry_values, rows["value"].astype(np.float64)])
            if rows.size:
                after_us = int(ts[-1])
            # All but the last window's points, unless this is the last slice.
            cut = ts.size if final else int(np.searchsorted(ts, ts[-1] // width * width))
            carry_ts, carry_values = ts[cut:], values[cut:]
            if cut:
                first, starts, ends = chunks.new_windows(ts[:cut], width, np.empty(0, np.int64), np.empty(0, np.int64))
                stops = np.append(first[1:], cut)
                windows = zip(first.tolist(), stops.tolist(), starts.tolist(), ends.tolist(), strict=True)
                encoded, cut_width = chunks.encode_pieces([(ts[a:b], values[a:b], lo, hi) for a, b, lo, hi in windows])
                narrowest = min(narrowest, cut_width or narrowest)
                cursor.copy_expert(
                    f"COPY point_chunk ({pgcopy.CHUNK_COLUMNS}) FROM STDIN WITH BINARY",
                    io.BytesIO(pgcopy.chunk_rows(key, encoded)),
                )
                moved += cut
            if final:
                break
        if moved != count:
            raise RuntimeError(f"dataset {key}: moved {moved} of {count} points")
        cursor.execute(
            "UPDATE dataset SET point_count = %s, chunk_width_us = %s,"
            " first_point_time = (SELECT min(ts) FROM point WHERE dataset_id = %s),"
            " last_point_time = (SELECT max(ts) FROM point WHERE dataset_id = %s) WHERE id = %s",
            (count, narrowest, str(key), str(key), str(key)),
        )
    cursor.execute("DROP TABLE point")


# How long a dataset keeps its points (DatasetRow.retention_us); NULL: until deleted.
_DATASET_RETENTION_V9 = """
ALTER TABLE "dataset" ADD COLUMN "retention_us" BIGINT CHECK ("retention_us" > 0);
"""


_REVOCATIONS_V10 = """
ALTER TABLE "app_user" ADD COLUMN "token_generation" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "refresh_token" ADD COLUMN "session_id" UUID;
UPDATE "refresh_token" SET "session_id" = "id";
ALTER TABLE "refresh_token" ALTER COLUMN "session_id" SET NOT NULL;
ALTER TABLE "refresh_token" ADD COLUMN "rotate_time" TIMESTAMPTZ;
CREATE INDEX "refreshtokenrow_session_id" ON "refresh_token" ("session_id");
CREATE TABLE "token_revocation" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "min_generation" BIGINT NOT NULL,
    "expire_time" TIMESTAMPTZ NOT NULL
);
CREATE INDEX "tokenrevocationrow_expire_time" ON "token_revocation" ("expire_time");
"""

_LOGIN_ATTEMPTS_V11 = """
CREATE TABLE "login_attempt" (
    "id" BIGSERIAL PRIMARY KEY,
    "username" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "succeeded" BOOLEAN NOT NULL,
    "attempt_time" TIMESTAMPTZ NOT NULL
);
CREATE INDEX "loginattemptrow_username_attempt_time" ON "login_attempt" ("username", "attempt_time");
CREATE INDEX "loginattemptrow_address_attempt_time" ON "login_attempt" ("address", "attempt_time");
"""

_SCHEDULE_ERRORS_V14 = """
ALTER TABLE "analysis_schedule" ADD COLUMN "error" TEXT NOT NULL DEFAULT '';
UPDATE "analysis_schedule"
    SET "enabled" = false, "next_run_time" = NULL,
        "error" = 'interval_seconds must be at least 1; disabled when the service was upgraded'
    WHERE "interval_seconds" IS NOT NULL AND "interval_seconds" < 1;
"""

_OUTBOX_HEADERS_V15 = """
ALTER TABLE "outbox" ADD COLUMN "headers" JSONB NOT NULL DEFAULT '{}'::jsonb;
"""

_RESULT_TRACE_ID_V16 = """
ALTER TABLE "analysis_result" ADD COLUMN "trace_id" TEXT NOT NULL DEFAULT '';
"""

_DATASET_PERIODS_V17 = """
ALTER TABLE "dataset" ADD COLUMN "seasonal_periods_s" BIGINT[] NOT NULL DEFAULT '{}';
"""

# Version numbers taken by work in progress, so two changes never pick the same one:
# 7-8 the chunked point store, 9 dataset retention, 10-11 auth revocation and
# throttling, 12-13 job leases, 14 schedule errors, 15 outbox trace headers,
# 16 result trace ids, 17 declared seasonal periods. The next free number is 18.
MIGRATIONS = [
    sql_migration(1, "create dataset table", _DATASETS_V1),
    sql_migration(2, "create user, refresh token and api key tables", _AUTH_V2),
    sql_migration(3, "create point table", _POINTS_V3),
    sql_migration(4, "create analysis schedule, result and outbox tables", _SCHEMA_V4),
    Migration(5, "store result outputs as protobuf", _outputs_as_protobuf),
    sql_migration(6, "index a dataset's results by kind, status and anomalies", _DATASET_FILTER_INDEXES_V6),
    sql_migration(7, "create point_chunk table and dataset chunk width", _POINT_CHUNKS_V7),
    Migration(8, "move points into chunks and drop the point table", _points_into_chunks),
    sql_migration(9, "add a dataset's retention", _DATASET_RETENTION_V9),
    sql_migration(10, "access token revocation: user token generations, sessions, revocations", _REVOCATIONS_V10),
    sql_migration(11, "sign-in attempts for throttling shared by every replica", _LOGIN_ATTEMPTS_V11),
    sql_migration(14, "schedules say why the scheduler disabled them", _SCHEDULE_ERRORS_V14),
    sql_migration(15, "outbox rows keep the trace context of the change they report", _OUTBOX_HEADERS_V15),
    sql_migration(16, "results keep the id of the trace that produced them", _RESULT_TRACE_ID_V16),
    sql_migration(17, "a dataset's declared seasonal periods", _DATASET_PERIODS_V17),
]
