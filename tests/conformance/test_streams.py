"""Server streams through gRPC and through REST via Envoy: Envoy sends the
messages of a stream as newline-delimited JSON, one line a message as it
arrives, each the gRPC message printed with Envoy's JSON options."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx

from mesh.analytics.v1 import analysis_pb2 as apb
from mesh.analytics.v1 import analytics_service_pb2 as pb
from mesh.analytics.v1 import analytics_service_pb2_grpc as analytics_grpc
from mesh.analytics.v1 import dataset_pb2
from mesh.llm.v1 import completion_pb2
from mesh.llm.v1 import llm_service_pb2 as llm_pb
from mesh.llm.v1 import llm_service_pb2_grpc as llm_grpc
from tests.conformance.proto_json import as_rest_json, json_problems
from tests.conformance.test_unary import START_US, STEP_US, wait_until_settled


def ndjson_messages(lines: Iterator[str]) -> Iterator[Any]:
    """The messages of a stream through Envoy, one JSON object a line, each
    as soon as its line is complete."""
    for line in lines:
        if line.strip():
            message = json.loads(line)
            assert isinstance(message, dict), f"one JSON object a line, got {line[:80]!r}"
            yield message


def _dataset_with_points(stub: analytics_grpc.AnalyticsServiceStub) -> str:
    dataset_id = str(
        stub.CreateDataset(
            pb.CreateDatasetRequest(dataset=dataset_pb2.Dataset(name=f"conf-{uuid.uuid4().hex[:10]}")), timeout=10
        ).dataset.id
    )
    values = [float(i % 11) for i in range(100)]
    values[50] = 400.0
    stub.AppendPoints(
        pb.AppendPointsRequest(
            dataset_id=dataset_id, timestamps_us=[START_US + i * STEP_US for i in range(100)], values=values
        ),
        timeout=10,
    )
    return dataset_id


def test_stream_complete_arrives_as_one_json_line_per_grpc_message(
    llm: llm_grpc.LlmServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    prompt = f"mean 12.5, max 40 ({uuid.uuid4().hex[:6]})"
    chunks = list(
        llm.StreamComplete(
            llm_pb.StreamCompleteRequest(
                messages=[completion_pb2.ChatMessage(role=completion_pb2.ROLE_USER, content=prompt)]
            ),
            timeout=30,
        )
    )
    with rest.stream(
        "POST", "/v1/completions:stream", json={"messages": [{"role": "ROLE_USER", "content": prompt}]}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        raw = "".join(response.iter_text())
    elements = list(ndjson_messages(iter(raw.splitlines())))
    for element in elements:
        assert json_problems(llm_pb.StreamCompleteResponse.DESCRIPTOR, element, True) == []
    expected = [as_rest_json(c, print_options) for c in chunks]
    # Latency is measured per call; every other field of every chunk is the same.
    for element in (*elements, *expected):
        element.pop("latency", None)
        element.pop("cached", None)
    assert elements == expected
    assert elements[-1]["finishReason"] == "FINISH_REASON_STOP"


def test_ask_about_result_arrives_as_one_json_line_per_grpc_message(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client, print_options: dict[str, bool]
) -> None:
    dataset_id = _dataset_with_points(analytics)
    queued = analytics.RunAnalysis(
        pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_REPORT), timeout=10
    ).result
    assert wait_until_settled(analytics, queued.id).status == apb.RESULT_STATUS_SUCCEEDED
    question = "What was the peak?"
    chunks = list(
        analytics.AskAboutResult(pb.AskAboutResultRequest(result_id=queued.id, question=question), timeout=30)
    )
    response = rest.post(f"/v1/results/{queued.id}:ask", json={"question": question})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    elements = list(ndjson_messages(iter(response.text.splitlines())))
    assert isinstance(elements, list) and len(elements) == len(chunks) > 1
    for element in elements:
        assert json_problems(pb.AskAboutResultResponse.DESCRIPTOR, element, True) == []
    assert elements == [as_rest_json(c, print_options) for c in chunks]
    assert "400" in "".join(e["text"] for e in elements)


def test_a_csv_export_downloads_as_the_bytes_the_grpc_stream_sends(
    analytics: analytics_grpc.AnalyticsServiceStub, rest: httpx.Client
) -> None:
    dataset_id = _dataset_with_points(analytics)
    messages = list(analytics.ExportPoints(pb.ExportPointsRequest(dataset_id=dataset_id), timeout=30))
    with rest.stream("GET", f"/v1/datasets/{dataset_id}/points:export") as response:
        assert response.status_code == 200
        # Not a JSON array: google.api.HttpBody messages are the body itself, typed by the first one.
        assert response.headers["content-type"] == messages[0].content_type == "text/csv; charset=utf-8"
        downloaded = b"".join(response.iter_bytes())
    assert downloaded == b"".join(m.data for m in messages)
    assert downloaded.count(b"\n") == 101


def _settled(source: queue.Queue[Any], result_id: str, read: Any) -> Any:
    """The first item of ``source`` showing ``result_id`` finished with its insight settled, or None."""
    while True:
        try:
            item = source.get(timeout=15)
        except queue.Empty:
            return None
        found_id, status, insight = read(item)
        if found_id == result_id and status == "RESULT_STATUS_SUCCEEDED" and insight != "INSIGHT_STATUS_PENDING":
            return item


def test_watch_results_streams_json_elements_equal_to_the_grpc_messages(
    mesh: Any, analytics: analytics_grpc.AnalyticsServiceStub, print_options: dict[str, bool]
) -> None:
    dataset_id = _dataset_with_points(analytics)
    through_grpc: queue.Queue[apb.Result] = queue.Queue()
    through_rest: queue.Queue[dict[str, Any]] = queue.Queue()
    headers = {"authorization": f"Bearer {mesh.tokens['analyst']}"}
    client = httpx.Client(base_url=mesh.rest, headers=headers, timeout=httpx.Timeout(10, read=180))
    channel = mesh.channel(mesh.analytics, "analyst")
    grpc_call = analytics_grpc.AnalyticsServiceStub(channel).WatchResults(
        pb.WatchResultsRequest(dataset_id=dataset_id), timeout=180
    )
    rest_status: list[int] = []
    rest_types: list[str] = []
    rest_ended = threading.Event()

    def follow_grpc() -> None:
        try:
            for reply in grpc_call:
                through_grpc.put(reply.result)
        except grpc.RpcError:
            pass  # cancelled by the test once it has what it waits for

    def follow_rest() -> None:
        try:
            with client.stream("GET", "/v1/results:watch", params={"datasetId": dataset_id}) as response:
                rest_status.append(response.status_code)
                rest_types.append(response.headers["content-type"])
                for element in ndjson_messages(response.iter_lines()):
                    through_rest.put(element)
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test once it has what it waits for
        finally:
            rest_ended.set()

    threads = [threading.Thread(target=follow_grpc, daemon=True), threading.Thread(target=follow_rest, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        # A watch sees changes from the moment the service has registered it, which
        # no reply announces: analyse until both watches have seen one result settle.
        for _ in range(5):
            queued = analytics.RunAnalysis(
                pb.RunAnalysisRequest(dataset_id=dataset_id, kind=apb.ANALYSIS_KIND_SUMMARY), timeout=10
            ).result
            assert wait_until_settled(analytics, queued.id).status == apb.RESULT_STATUS_SUCCEEDED
            by_grpc = _settled(
                through_grpc,
                queued.id,
                lambda r: (r.id, apb.ResultStatus.Name(r.status), apb.InsightStatus.Name(r.insight.status)),
            )
            by_rest = _settled(
                through_rest,
                queued.id,
                lambda e: (e["result"]["id"], e["result"]["status"], e["result"]["insight"]["status"]),
            )
            if by_grpc is not None and by_rest is not None:
                # Read while the REST stream is still open: each line comes as it happens.
                assert not rest_ended.is_set(), "the REST watch ended before its message was read"
                break
        else:
            raise AssertionError("the watches never both saw a result settle")
    finally:
        grpc_call.cancel()
        client.close()
        channel.close()

    assert rest_status == [200] and rest_types == ["application/x-ndjson"]
    assert json_problems(pb.WatchResultsResponse.DESCRIPTOR, by_rest, True) == []
    assert by_rest == as_rest_json(pb.WatchResultsResponse(result=by_grpc), print_options)
    assert by_rest["result"]["datasetId"] == dataset_id
