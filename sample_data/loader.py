"""Load sample series into a running mesh through the public API:
CreateDataset (or find the existing one), then the client-streaming
IngestPoints in batches, as the given user, with a progress bar on stderr."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator

import grpc

from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh_runtime.errors import MeshError
from sample_data.series import KINDS, Series, SeriesKind, generate

BATCH = 20_000


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
