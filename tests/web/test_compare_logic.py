"""The pure logic of the Compare page: the ids of its address, which axis
each dataset's line goes on, and the rows merged from one BatchQueryPoints
answer. No network, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mesh.analytics.v1 import analytics_service_pb2, dataset_pb2, points_pb2

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.pages import compare  # noqa: E402


def test_the_address_names_the_datasets_in_order_without_blanks_or_repeats() -> None:
    assert compare.ids_from_query(" a, b,,a ,c") == ["a", "b", "c"]
    assert compare.ids_from_query("") == []
    assert compare.compare_href(["a", "b"]) == "/compare?ids=a,b"


def test_the_first_unit_goes_left_the_second_right_and_a_third_is_refused() -> None:
    datasets = [
        dataset_pb2.Dataset(id="1", name="speed", unit="rpm"),
        dataset_pb2.Dataset(id="2", name="heat", unit="°C"),
        dataset_pb2.Dataset(id="3", name="speed 2", unit="rpm"),
    ]
    series, units = compare.assign_axes(datasets)
    assert units == ["rpm", "°C"]
    assert [(s.key, s.axis) for s in series] == [("d0", "left"), ("d1", "right"), ("d2", "left")]
    with pytest.raises(ValueError, match="more than two units"):
        compare.assign_axes([*datasets, dataset_pb2.Dataset(id="4", name="load", unit="%")])


def test_rows_line_up_the_datasets_buckets_with_a_gap_where_one_has_none() -> None:
    series, _ = compare.assign_axes([dataset_pb2.Dataset(id="a", name="a"), dataset_pb2.Dataset(id="b", name="b")])
    answer = analytics_service_pb2.BatchQueryPointsResponse(
        datasets=[
            points_pb2.DatasetBuckets(
                dataset_id="a", buckets=points_pb2.PointBuckets(start_times_us=[0, 2000], mean=[1.0, 3.0])
            ),
            points_pb2.DatasetBuckets(
                dataset_id="b", buckets=points_pb2.PointBuckets(start_times_us=[1000, 2000], mean=[5.0, 6.0])
            ),
        ]
    )
    assert compare.compare_rows(series, answer) == [
        {"t": 0, "d0": 1.0, "d1": None},
        {"t": 1, "d0": None, "d1": 5.0},
        {"t": 2, "d0": 3.0, "d1": 6.0},
    ]
