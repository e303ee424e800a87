"""The result page's link to a trace viewer: which URL, and when there is none."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mesh_runtime.config import ConfigError, load_settings

# The app is run from web/ (Reflex's app folder), so its package is top-level there.
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web.components.trace_link import trace_url  # noqa: E402
from mesh_web.service_clients import ServiceSettings  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_link_puts_the_trace_id_into_the_viewers_url() -> None:
    settings = load_settings(ServiceSettings, {"WEB_TRACE_URL": "http://127.0.0.1:16686/trace/{trace_id}"})
    assert trace_url(TRACE_ID, settings.trace_url_template) == f"http://127.0.0.1:16686/trace/{TRACE_ID}"
    phoenix = "http://127.0.0.1:16006/redirects/traces/{trace_id}"
    assert trace_url(TRACE_ID, phoenix) == f"http://127.0.0.1:16006/redirects/traces/{TRACE_ID}"


@pytest.mark.parametrize("trace_id", ["", "not-a-trace", TRACE_ID.upper(), TRACE_ID + "00"])
def test_no_link_without_a_trace_id(trace_id: str) -> None:
    assert trace_url(trace_id, "http://viewer/trace/{trace_id}") == ""


def test_no_link_without_a_viewer() -> None:
    assert load_settings(ServiceSettings, {}).trace_url_template == ""
    assert trace_url(TRACE_ID, "") == ""


@pytest.mark.parametrize(
    "bad", ["http://viewer/trace/", "ftp://viewer/{trace_id}", "{trace_id}", "http://v/{trace_id}/{trace_id}"]
)
def test_a_bad_template_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match="WEB_TRACE_URL"):
        load_settings(ServiceSettings, {"WEB_TRACE_URL": bad})
