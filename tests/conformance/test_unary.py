"""The same resources through gRPC straight to each service and through REST via
Envoy: the REST JSON equals the gRPC reply printed with Envoy's own JSON options
(``json_format.MessageToDict``), and it is proto3 JSON field by field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.analytics.v1 import points_pb2 as ppb
from mesh.llm.v1 import completion_pb2
from mesh.llm.v1 import llm_service_pb2 as llm_pb
from mesh.llm.v1 import llm_service_pb2_grpc as llm_grpc
from mesh.notify.v1 import notify_service_pb2 as notify_pb
from mesh.notify.v1 import notify_service_pb2_grpc as notify_grpc
from mesh.notify.v1 import subscription_pb2
from tests.conformance.proto_json import as_rest_json, json_problems
from tests.eventually import eventually

START_US = 1_700_000_000_000_000
STEP_US = 60_000_000


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def conforms(response: httpx.Response, reply_type: type[Message], print_options: dict[str, bool]) -> dict[str, Any]:
    """The JSON body of a successful REST call, checked field by field against ``reply_type``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    defaults = print_options["always_print_primitive_fields"]
    assert json_problems(reply_type.DESCRIPTOR, body, defaults) == []
    return dict(body)


def test_envoy_prints_names_in_camel_case_enums_as_names_and_defaults(print_options: dict[str, bool]) -> None:
    # What the assertions below rely on, as gateway/envoy_config.py configures it.
    assert print_options["preserve_proto_field_names"] is False
    assert print_options["always_print_enums_as_ints"] is False
    assert print_options["always_print_primitive_fields"] is True


def test_a_dataset_reads_the_same_through_grpc_and_rest(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    created = analytics.CreateDataset(
        pb.CreateDatasetRequest(
            dataset=dataset_pb2.Dataset(
                name=f"conf-{uuid.uuid4().hex[:10]}", unit="ms", labels={"host": "web-1", "tier": "edge"}
            )
        ),
        timeout=10,
    ).dataset
    # A fresh dataset: point count 0 and an empty description must still be printed.
    body = conforms(rest.get(f"/v1/datasets/{created.id}"), pb.GetDatasetResponse, print_options)
    assert body["dataset"]["pointCount"] == "0" and body["dataset"]["description"] == ""
    assert "firstPointTime" not in body["dataset"]  # a message field without a value is absent
    grpc_reply = analytics.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10)
    assert body == as_rest_json(grpc_reply, print_options)

    # The same create through REST gives the same shape, and gRPC reads it back equal.
    name = f"conf-{uuid.uuid4().hex[:10]}"
    made = conforms(
        rest.post("/v1/datasets", json={"name": name, "unit": "%", "labels": {"host": "db-1"}}),
        pb.CreateDatasetResponse,
        print_options,
    )
    assert made["dataset"]["name"] == name and made["dataset"]["labels"] == {"host": "db-1"}
    again = analytics.GetDataset(pb.GetDatasetRequest(id=made["dataset"]["id"]), timeout=10)
    assert made == as_rest_json(pb.CreateDatasetResponse(dataset=again.dataset), print_options)

    # Update through REST (field mask as a query parameter), read back through gRPC.
    patched = conforms(
        rest.patch(
            f"/v1/datasets/{created.id}",
            params={"updateMask": "description,unit"},
            json={"description": "edge latency", "unit": "s"},
        ),
        pb.UpdateDatasetResponse,
        print_options,
    )
    after = analytics.GetDataset(pb.GetDatasetRequest(id=created.id), timeout=10).dataset
    assert (after.description, after.unit) == ("edge latency", "s")
    assert patched == as_rest_json(pb.UpdateDatasetResponse(dataset=after), print_options)


def test_appending_points_answers_the_same_through_grpc_and_rest(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    def fresh() -> str:
        request = pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}"))
        return str(analytics.CreateDataset(request, timeout=10).dataset.id)

    stamps = [START_US + i * STEP_US for i in range(4)]
    values = [1.5, float("nan"), 3.25, 4e300]  # one point is rejected: not finite
    by_grpc = analytics.AppendPoints(
        pb.AppendPointsRequest(dataset_id=fresh(), timestamps_us=stamps, values=values), timeout=10
    )
    assert by_grpc.rejected_count == 1
    rest_id = fresh()
    body = conforms(
        rest.post(
            f"/v1/datasets/{rest_id}/points:append",
            # int64 in as strings and NaN as its JSON name, as proto3 JSON reads them.
            json={"timestampsUs": [str(s) for s in stamps], "values": [1.5, "NaN", 3.25, 4e300]},
        ),
        pb.AppendPointsResponse,
        print_options,
    )
    assert body["acceptedCount"] == "3" and body["rejectedCount"] == "1"
    assert body["rejectedPoints"][0]["timestampUs"] == str(stamps[1])
    dataset = analytics.GetDataset(pb.GetDatasetRequest(id=rest_id), timeout=10).dataset
    expected = as_rest_json(by_grpc, print_options)
    expected["dataset"] = as_rest_json(dataset, print_options)
    assert body == expected
    assert body["dataset"]["firstPointTime"] == "2023-11-14T22:13:20Z"


def test_points_read_and_delete_the_same_through_grpc_and_rest(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    def fresh() -> str:
        request = pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}"))
        return str(analytics.CreateDataset(request, timeout=10).dataset.id)

    first, second = fresh(), fresh()
    for dataset_id, shift in ((first, 0.0), (second, 0.5)):
        analytics.AppendPoints(
            pb.AppendPointsRequest(
                dataset_id=dataset_id,
                timestamps_us=[START_US + i * STEP_US for i in range(30)],
                values=[i * 1.25 + shift for i in range(30)],
            ),
            timeout=10,
        )
    start, end = "2023-11-14T22:13:20Z", "2023-11-14T22:33:20Z"  # START_US and 20 minutes on
    window = {"start_time": timestamp(START_US), "end_time": timestamp(START_US + 20 * STEP_US)}

    # Raw points, a page at a time: int64 timestamps as strings, the token the same.
    body = conforms(
        rest.get(f"/v1/datasets/{first}/points", params={"startTime": start, "endTime": end, "pageSize": 8}),
        pb.QueryPointsResponse,
        print_options,
    )
    by_grpc = analytics.QueryPoints(pb.QueryPointsRequest(dataset_id=first, page_size=8, **window), timeout=10)
    assert body == as_rest_json(by_grpc, print_options)
    assert body["points"]["timestampsUs"][0] == str(START_US) and body["nextPageToken"]
    assert "buckets" not in body  # the other member of the oneof is absent

    # Buckets: enums by name in the query string, a Duration as "600s".
    query = [("step", "600s"), ("aggregations", "AGGREGATION_MEAN"), ("aggregations", "AGGREGATION_COUNT")]
    body = conforms(rest.get(f"/v1/datasets/{first}/points", params=query), pb.QueryPointsResponse, print_options)
    aggregations = [ppb.AGGREGATION_MEAN, ppb.AGGREGATION_COUNT]
    step = duration_pb2.Duration(seconds=600)
    by_grpc = analytics.QueryPoints(
        pb.QueryPointsRequest(dataset_id=first, step=step, aggregations=aggregations), timeout=10
    )
    assert body == as_rest_json(by_grpc, print_options)
    assert body["buckets"]["min"] == [] and len(body["buckets"]["mean"]) == len(body["buckets"]["startTimesUs"])

    body = conforms(
        rest.get("/v1/datasets:batchQueryPoints", params=[("datasetIds", second), ("datasetIds", first), *query]),
        pb.BatchQueryPointsResponse,
        print_options,
    )
    by_grpc = analytics.BatchQueryPoints(
        pb.BatchQueryPointsRequest(dataset_ids=[second, first], step=step, aggregations=aggregations), timeout=10
    )
    assert body == as_rest_json(by_grpc, print_options)

    body = conforms(
        rest.delete(f"/v1/datasets/{first}/points", params={"startTime": start, "endTime": end}),
        pb.DeletePointsResponse,
        print_options,
    )
    by_grpc = analytics.DeletePoints(pb.DeletePointsRequest(dataset_id=second, **window), timeout=10)
    assert body["deletedCount"] == "20" and by_grpc.deleted_count == 20
    got = analytics.GetDataset(pb.GetDatasetRequest(id=first), timeout=10).dataset
    assert body == as_rest_json(pb.DeletePointsResponse(deleted_count=20, dataset=got), print_options)


def test_a_csv_upload_answers_like_its_json_form(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    def fresh() -> str:
        request = pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}"))
        return str(analytics.CreateDataset(request, timeout=10).dataset.id)

    csv = b"time,value\n2024-05-01T12:00:00Z,1.5\nnoon,2\n1714564801,2.5\n"
    uploaded_id, imported_id = fresh(), fresh()
    uploaded = conforms(
        rest.post(f"/v1/datasets/{uploaded_id}/points:uploadCsv", content=csv, headers={"content-type": "text/csv"}),
        pb.UploadCsvResponse,
        print_options,
    )
    imported = analytics.ImportCsv(pb.ImportCsvRequest(dataset_id=imported_id, csv=csv), timeout=10)
    assert (uploaded["acceptedCount"], uploaded["header"]) == ("2", "time,value")
    assert uploaded["rejectedLines"] == as_rest_json(imported, print_options)["rejectedLines"]
    dataset = analytics.GetDataset(pb.GetDatasetRequest(id=uploaded_id), timeout=10).dataset
    expected = pb.UploadCsvResponse.FromString(imported.SerializeToString())  # the same fields, numbered alike
    expected.dataset.CopyFrom(dataset)
    assert uploaded == as_rest_json(expected, print_options)


def test_a_finished_result_reads_the_same_through_grpc_and_rest(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    dataset_id = analytics.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}")), timeout=10
    ).dataset.id
    values = [10.0 + (i % 7) for i in range(200)]
    values[120] = 500.0
    analytics.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=dataset_id, timestamps_us=[START_US + i * STEP_US for i in range(200)], values=values
        ),
        timeout=10,
    )
    queued = conforms(
        rest.post(f"/v1/datasets/{dataset_id}:analyze", json={"kind": "ANALYSIS_KIND_REPORT"}),
        pb.RunAnalysisResponse,
        print_options,
    )
    result_id = queued["result"]["id"]
    assert queued["result"]["kind"] == "ANALYSIS_KIND_REPORT"
    assert queued["result"]["status"] in ("RESULT_STATUS_PENDING", "RESULT_STATUS_RUNNING", "RESULT_STATUS_SUCCEEDED")
    finished = wait_until_settled(analytics, result_id)
    assert finished.status == apb.RESULT_STATUS_SUCCEEDED, finished.error

    body = conforms(
        rest.get(f"/v1/results/{result_id}", params={"seriesPoints": 40}), pb.GetResultResponse, print_options
    )
    grpc_reply = analytics.GetResult(pb.GetResultRequest(id=result_id, series_points=40), timeout=10)
    assert body == as_rest_json(grpc_reply, print_options)
    assert body["result"]["status"] == "RESULT_STATUS_SUCCEEDED"
    assert body["result"]["output"]["summary"]["count"] == "200"
    assert body["result"]["output"]["anomalies"]["anomalies"][0]["timestampUs"] == str(START_US + 120 * STEP_US)

    listed = conforms(
        rest.get("/v1/results", params={"datasetId": dataset_id, "kind": "ANALYSIS_KIND_REPORT"}),
        pb.ListResultsResponse,
        print_options,
    )
    grpc_list = analytics.ListResults(
        pb.ListResultsRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10
    )
    assert listed == as_rest_json(grpc_list, print_options)
    assert [r["id"] for r in listed["results"]] == [result_id]
    assert listed["nextPageToken"] == ""  # an empty string, printed because defaults are


def wait_until_settled(stub: analytics_grpc.AnalyticsServiceStub, result_id: str) -> apb.Result:
    """GetResult until the result has finished and its insight is no longer pending."""

    def settled() -> apb.Result | None:
        result = stub.GetResult(pb.GetResultRequest(id=result_id), timeout=10).result
        done = result.status in (apb.RESULT_STATUS_SUCCEEDED, apb.RESULT_STATUS_FAILED)
        return result if done and result.insight.status != apb.INSIGHT_STATUS_PENDING else None

    return eventually(settled, 90, f"result {result_id} to settle", interval=0.2)


def test_a_schedule_reads_the_same_through_grpc_and_rest(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    dataset_id = analytics.CreateDataset(
        pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}")), timeout=10
    ).dataset.id
    made = conforms(
        rest.post(
            "/v1/schedules",
            json={
                "datasetId": dataset_id,
                "kind": "ANALYSIS_KIND_ANOMALIES",
                "parameters": {"lookbackSeconds": "86400", "anomalyThreshold": 4},
                "cron": "0 6 * * MON-FRI",
                "timeZone": "Europe/Paris",
                "enabled": False,
            },
        ),
        pb.CreateScheduleResponse,
        print_options,
    )
    schedule = made["schedule"]
    assert schedule["parameters"]["lookbackSeconds"] == "86400"
    assert schedule["enabled"] is False  # a false bool is printed, not dropped
    assert "intervalSeconds" not in schedule  # the other member of the oneof is absent
    grpc_reply = analytics.GetSchedule(pb.GetScheduleRequest(id=schedule["id"]), timeout=10)
    assert conforms(rest.get(f"/v1/schedules/{schedule['id']}"), pb.GetScheduleResponse, print_options) == as_rest_json(
        grpc_reply, print_options
    )

    # Switch to an interval through gRPC; REST lists it the same way.
    updated = analytics.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=apb.Schedule(id=schedule["id"], interval_seconds=3600, enabled=False),
            update_mask=field_mask_pb2.FieldMask(paths=["interval_seconds"]),
        ),
        timeout=10,
    ).schedule
    assert updated.interval_seconds == 3600
    listed = conforms(
        rest.get("/v1/schedules", params={"datasetId": dataset_id}), pb.ListSchedulesResponse, print_options
    )
    grpc_list = analytics.ListSchedules(pb.ListSchedulesRequest(dataset_id=dataset_id), timeout=10)
    assert listed == as_rest_json(grpc_list, print_options)
    assert listed["schedules"][0]["intervalSeconds"] == "3600" and "cron" not in listed["schedules"][0]
    assert rest.delete(f"/v1/schedules/{schedule['id']}").json() == {}


def test_a_completion_answers_the_same_through_grpc_and_rest(
    llm: llm_grpc.LlmServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    question = f"values 3 and 9, mean 6 ({uuid.uuid4().hex[:6]})"
    by_grpc = llm.Complete(
        llm_pb.CompleteRequest(messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=question)]),
        timeout=30,
    )
    body = conforms(
        rest.post("/v1/completions", json={"messages": [{"role": "ROLE_USER", "content": question}]}),
        llm_pb.CompleteResponse,
        print_options,
    )
    assert body["finishReason"] == "FINISH_REASON_STOP"
    assert body["latency"].endswith("s") and isinstance(body["cached"], bool)
    expected = as_rest_json(by_grpc, print_options)
    # How long it took and whether the (second) answer came from the cache differ per call.
    for varying in ("latency", "cached"):
        expected.pop(varying)
        body.pop(varying)
    assert body == expected


def test_a_subscription_reads_the_same_through_grpc_and_rest(
    notify: notify_grpc.NotifyServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    email = f"conf-{uuid.uuid4().hex[:8]}@example.com"
    made = conforms(
        rest.post(
            "/v1/subscriptions",
            json={"email": email, "displayName": "Ada", "eventTypes": ["EVENT_TYPE_ANOMALY_DETECTED"]},
        ),
        notify_pb.CreateSubscriptionResponse,
        print_options,
    )
    sub = made["subscription"]
    assert sub["eventTypes"] == ["EVENT_TYPE_ANOMALY_DETECTED"] and sub["datasetIds"] == []
    grpc_reply = notify.GetSubscription(notify_pb.GetSubscriptionRequest(id=sub["id"]), timeout=10)
    got = conforms(rest.get(f"/v1/subscriptions/{sub['id']}"), notify_pb.GetSubscriptionResponse, print_options)
    assert got == as_rest_json(grpc_reply, print_options)

    updated = notify.UpdateSubscription(
        notify_pb.UpdateSubscriptionRequest(
            subscription=subscription_pb2.Subscription(id=sub["id"], display_name="Ada L."),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        timeout=10,
    )
    got = conforms(rest.get(f"/v1/subscriptions/{sub['id']}"), notify_pb.GetSubscriptionResponse, print_options)
    assert got == as_rest_json(notify_pb.GetSubscriptionResponse(subscription=updated.subscription), print_options)

    listed = conforms(
        rest.get("/v1/subscriptions", params={"pageSize": 1000}), notify_pb.ListSubscriptionsResponse, print_options
    )
    grpc_list = notify.ListSubscriptions(notify_pb.ListSubscriptionsRequest(page_size=1000), timeout=10)
    assert listed == as_rest_json(grpc_list, print_options)
    assert email in [s["email"] for s in listed["subscriptions"]]
    assert rest.delete(f"/v1/subscriptions/{sub['id']}").json() == {}
