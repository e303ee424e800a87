"""The pure logic of the dataset page's chart: the step from the range, the
presets back from the last point, zoom and pan kept within the data, the
rows with anomaly marks, and the CSV's file name. No network, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

from mesh.analytics.v1 import points_pb2

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.pages.dataset import chart  # noqa: E402

HOUR = chart.HOUR_US
DAY = 24 * HOUR


def test_the_step_cuts_any_range_into_at_most_500_buckets() -> None:
    assert chart.chart_step_us(0, DAY) == 172_800_000
    for span in (1, 499, 500, 501, 7 * DAY + 1, 259_140_000_001):
        step = chart.chart_step_us(0, span)
        assert -(-span // step) <= chart.CHART_BUCKETS
        assert step == 1 or -(-span // (step - 1)) > chart.CHART_BUCKETS


def test_presets_count_back_from_just_after_the_last_point_and_stop_at_the_first() -> None:
    first, last = 10 * DAY, 20 * DAY
    assert chart.preset_range("hour", first, last) == (last + 1 - HOUR, last + 1)
    assert chart.preset_range("week", first, last) == (last + 1 - 7 * DAY, last + 1)
    assert chart.preset_range("all", first, last) == (first, last + 1)
    assert chart.preset_range("week", last - HOUR, last) == (last - HOUR, last + 1)


def test_zoom_and_pan_stay_within_the_data() -> None:
    first, last = 0, DAY - 1
    assert chart.zoomed(0, DAY, 0.5, first, last) == (6 * HOUR, 18 * HOUR)
    assert chart.zoomed(6 * HOUR, 18 * HOUR, 4.0, first, last) == (0, DAY)
    assert chart.zoomed(0, 2_000_000, 0.1, first, last) == (500_000, 1_500_000)  # never under a second
    assert chart.panned(6 * HOUR, 18 * HOUR, -1.0, first, last) == (0, 12 * HOUR)
    assert chart.panned(6 * HOUR, 18 * HOUR, 0.5, first, last) == (12 * HOUR, DAY)


def test_rows_mark_the_anomaly_farthest_from_its_buckets_mean_and_skip_those_outside() -> None:
    buckets = points_pb2.PointBuckets(start_times_us=[0, 10, 30], min=[1, 2, 3], max=[5, 6, 90], mean=[2, 4, 20])
    anomalies = [(31, 80.0), (35, 90.0), (45, -1.0), (100, 7.0)]
    rows = chart.bucket_rows(buckets, 0, 50, 10, anomalies)
    assert [row["anomaly"] for row in rows] == [None, None, 90.0]
    assert [(row["min"], row["max"], row["mean"]) for row in rows] == [(1, 5, 2), (2, 6, 4), (3, 90, 20)]


def test_the_csv_is_named_after_the_dataset_and_range_in_safe_characters() -> None:
    name = chart.csv_file_name('rooms / "east" wing', 1_793_746_740_000_001, 1_793_748_540_000_001)
    assert name == "rooms-east-wing_20261103T225900-20261103T232900.csv"
    assert chart.csv_file_name("°°°", 0, 1_000_000) == "points_19700101T000000-19700101T000001.csv"
    assert chart.duration_text(172_800_000) == "2.88 min"
    assert chart.duration_text(250) == "250 µs"


def test_sparklines_go_to_the_ten_datasets_written_last_with_a_gap_for_each_empty_half_hour() -> None:
    from google.protobuf import timestamp_pb2
    from mesh_web.pages import sparklines

    from mesh.analytics.v1 import analytics_service_pb2, dataset_pb2

    datasets = [dataset_pb2.Dataset(id="never", name="never")] + [
        dataset_pb2.Dataset(id=f"d{i}", name=f"n{i}", last_point_time=timestamp_pb2.Timestamp(seconds=i))
        for i in range(12)
    ]
    assert sparklines.latest_written(datasets) == [(f"d{i}", f"n{i}") for i in range(11, 1, -1)]
    # A dataset whose last point lies in the future (year 9999) was not written recently.
    future = dataset_pb2.Dataset(id="f", name="f", last_point_time=timestamp_pb2.Timestamp(seconds=253402300799))
    assert sparklines.latest_written([future, *datasets], now_s=100) == [(f"d{i}", f"n{i}") for i in range(11, 1, -1)]

    step = sparklines.SPARKLINE_STEP_US
    answer = analytics_service_pb2.BatchQueryPointsResponse(
        datasets=[
            points_pb2.DatasetBuckets(
                dataset_id="d11", buckets=points_pb2.PointBuckets(start_times_us=[0, 2 * step], mean=[1.5, 2.5])
            )
        ]
    )
    rows = sparklines.sparkline_rows([("d11", "n11"), ("d10", "n10")], answer, 0)
    assert [row.filled for row in rows] == [2, 0]
    assert len(rows[0].points) == 48
    assert [point["v"] for point in rows[0].points[:4]] == [1.5, None, 2.5, None]


def test_a_drag_gives_the_buckets_it_spans_within_the_data_and_the_width_sets_the_step() -> None:
    first, last = 0, DAY - 1
    step = 60_000_000
    # Bucket starts at 1 h and 2 h (epoch ms): from the first's start to the last one's end.
    assert chart.dragged(3_600_000, 7_200_000, step, first, last) == (HOUR, 2 * HOUR + step)
    assert chart.dragged(-3_600_000, 3_600_000, step, first, last) == (0, 2 * HOUR + step)
    assert chart.dragged(5.0, 5.0, 1, first, last) == (0, 1_000_000)  # at least a second wide
    assert chart.dragged(float("nan"), 5.0, step, first, last) is None
    assert chart.dragged(7_200_000, 3_600_000, step, first, last) is None
    assert chart.buckets_for_width(1112) == 556
    assert chart.buckets_for_width(0) == chart.CHART_BUCKETS
    assert chart.buckets_for_width(20) == chart.MIN_BUCKETS
    assert chart.buckets_for_width(99_999) == chart.MAX_BUCKETS
