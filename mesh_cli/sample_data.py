"""`mesh sample-data`: realistic time series for trying the mesh out.

Each series has a level, a linear trend, a daily and a weekly cycle,
Gaussian noise and a few injected anomalies (spikes and dips of 8-12
standard deviations). They go in through the public API — CreateDataset, then
the client-streaming IngestPoints in batches — as the given user, with a
progress bar.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.errors import MeshError, from_rpc_error

BATCH = 20_000
DAY_S = 86_400.0


@dataclass(frozen=True)
class SeriesKind:
    """What a sample series looks like."""

    name: str
    description: str
    unit: str
    level: float
    trend_per_day: float
    daily: float
    weekly: float
    noise: float


KINDS = (
    SeriesKind("cpu-load", "CPU load of the web tier", "%", 45.0, 0.3, 15.0, 4.0, 3.0),
    SeriesKind("orders-per-minute", "Orders placed per minute", "1/min", 120.0, 1.5, 60.0, 20.0, 8.0),
    SeriesKind("latency-ms", "p50 API latency", "ms", 85.0, -0.2, 10.0, 3.0, 4.0),
    SeriesKind("temperature", "Server room temperature", "°C", 21.0, 0.01, 1.5, 0.3, 0.2),
)


@dataclass(frozen=True)
class Series:
    """Generated points and where the anomalies were put."""

    timestamps_us: np.ndarray
    values: np.ndarray
    anomaly_indices: np.ndarray


def generate(kind: SeriesKind, points: int, end: dt.datetime, interval_s: float, seed: int) -> Series:
    """``points`` values of ``kind`` ending at ``end``, one every ``interval_s`` seconds."""
    rng = np.random.default_rng(seed)
    seconds = np.arange(points, dtype=np.float64) * interval_s
    start_us = int(end.timestamp() * 1e6) - int(seconds[-1] * 1e6)
    timestamps = start_us + (seconds * 1e6).astype(np.int64)
    values = (
        kind.level
        + kind.trend_per_day * seconds / DAY_S
        + kind.daily * np.sin(2 * np.pi * seconds / DAY_S)
        + kind.weekly * np.sin(2 * np.pi * seconds / (7 * DAY_S))
        + rng.normal(0.0, kind.noise, points)
    )
    count = max(1, points // 5000)
    anomalies = np.sort(rng.choice(points, size=min(count, points), replace=False))
    signs = rng.choice([-1.0, 1.0], size=anomalies.size)
    values[anomalies] += signs * rng.uniform(8, 12, anomalies.size) * (kind.daily + kind.noise)
    return Series(timestamps, values, anomalies)


def _batches(dataset_id: str, series: Series, progress: Progress) -> Iterator[pb.IngestPointsRequest]:
    for start in range(0, series.values.size, BATCH):
        stop = min(start + BATCH, series.values.size)
        yield pb.IngestPointsRequest(
            dataset_id=dataset_id,
            timestamps_us=series.timestamps_us[start:stop].tolist(),
            values=series.values[start:stop].tolist(),
        )
        progress.advance(stop - start)


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count
        filled = int(30 * self.done / self.total)
        sys.stderr.write(f"\r  {self.label:<28} [{'#' * filled}{'.' * (30 - filled)}] {self.done:>10,}/{self.total:,}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _dataset_id(stub: pb_grpc.AnalyticsServiceStub, kind: SeriesKind, name: str, metadata: tuple) -> str:
    try:
        reply = stub.CreateDataset(
            pb.CreateDatasetRequest(
                dataset=dataset_pb2.Dataset(
                    name=name, description=kind.description, unit=kind.unit, labels={"source": "sample-data"}
                )
            ),
            timeout=30,
            metadata=metadata,
        )
        return str(reply.dataset.id)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:  # type: ignore[attr-defined]
            raise
    token = ""
    while True:  # it exists: find it and add to it
        page = stub.ListDatasets(
            pb.ListDatasetsRequest(page_size=1000, page_token=token), timeout=30, metadata=metadata
        )
        for dataset in page.datasets:
            if dataset.name == name:
                return str(dataset.id)
        token = page.next_page_token
        if not token:
            raise MeshError(f"dataset {name} exists but could not be found")


def load(address: str, token: str, datasets: int, points: int, interval_s: float, prefix: str, seed: int) -> list[str]:
    """Create (or extend) ``datasets`` sample datasets of ``points`` each; return their names."""
    metadata = (("authorization", f"Bearer {token}"),)
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    names = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        for number in range(datasets):
            kind = KINDS[number % len(KINDS)]
            name = f"{prefix}-{kind.name}" + (f"-{number // len(KINDS) + 1}" if number >= len(KINDS) else "")
            series = generate(kind, points, end, interval_s, seed + number)
            dataset_id = _dataset_id(stub, kind, name, metadata)
            reply = stub.IngestPoints(
                _batches(dataset_id, series, Progress(name, points)), timeout=600, metadata=metadata
            )
            if reply.rejected_count:
                raise MeshError(f"{name}: {reply.rejected_count} points were rejected")
            names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    """The `mesh sample-data` command."""
    from mesh_cli.accounts import mint_for_user
    from mesh_cli.stack import StackSettings
    from mesh_runtime.config import load_settings

    settings = load_settings(StackSettings)
    token = mint_for_user(args.user, settings)
    try:
        names = load(
            f"127.0.0.1:{settings.analytics_port}",
            token,
            args.datasets,
            args.points,
            args.interval_seconds,
            args.prefix,
            args.seed,
        )
    except grpc.RpcError as error:
        raise MeshError(f"analytics refused the sample data: {from_rpc_error(error).message}") from None
    print(f"loaded {len(names)} datasets of {args.points:,} points: {', '.join(names)}")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `mesh sample-data`."""

    def bounded(low: int, high: int) -> object:
        def parse(raw: str) -> int:
            value = int(raw)
            if not low <= value <= high:
                raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}")
            return value

        return parse

    cmd = sub.add_parser("sample-data", help="load realistic sample time series into the running mesh")
    cmd.add_argument("--user", required=True, help="an analyst or admin; the data is loaded as this user")
    cmd.add_argument("--datasets", type=bounded(1, 50), default=4, help="how many series (default 4)")
    cmd.add_argument("--points", type=bounded(10, 5_000_000), default=50_000, help="points per series")
    cmd.add_argument("--interval-seconds", type=float, default=60.0, help="spacing of the points (default 60)")
    cmd.add_argument("--prefix", default="sample", help="dataset names start with this (default 'sample')")
    cmd.add_argument("--seed", type=int, default=42, help="random seed, for repeatable data")
    cmd.set_defaults(func=run)
