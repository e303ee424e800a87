"""A result page links to the result's trace in the trace viewer
(WEB_TRACE_URL, set for the test session's web app in tests/conftest.py)."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import WEB_TRACE_URL, RunningStack
from tests.web.browser import WAIT_MS, fresh_page, launched_chromium, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


def test_a_result_page_links_to_its_trace(web: str, mesh: RunningStack, rest: httpx.Client) -> None:
    created = rest.post("/v1/datasets", json={"name": f"traced-{uuid.uuid4().hex[:8]}"})
    dataset_id = created.json()["dataset"]["id"]
    stamps = [str(1_700_000_000_000_000 + i * 60_000_000) for i in range(50)]
    rest.post(f"/v1/datasets/{dataset_id}/points:append", json={"timestampsUs": stamps, "values": [1.0] * 50})
    trace_id = os.urandom(16).hex()
    queued = rest.post(
        f"/v1/datasets/{dataset_id}:analyze",
        json={"kind": "ANALYSIS_KIND_SUMMARY"},
        headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"},
    )
    assert queued.status_code == 200, queued.text
    result_id = queued.json()["result"]["id"]
    with launched_chromium() as browser, fresh_page(browser) as page:
        sign_in(page, web, mesh.credentials["analyst"])
        page.goto(f"{web}/results/{result_id}")
        link = page.get_by_test_id("result-trace-link")
        expect(link).to_be_visible(timeout=WAIT_MS)
        expect(link).to_have_attribute("href", WEB_TRACE_URL.replace("{trace_id}", trace_id))
