"""The web app's pure logic: how datasets, counts, times and service failures
are shown, how the app reads where the services are, and the session rules
(when a token is renewed, what a role may do). No network, no browser."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mesh.analytics.v1 import analytics_service_pb2, dataset_pb2
from mesh.auth.v1 import access_pb2
from mesh_runtime.config import ConfigError, load_settings
from mesh_runtime.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    MeshError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)

# The app is run from web/ (Reflex's app folder), so its package is top-level there.
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
if str(WEB_DIR) not in sys.path:
    sys.path.insert(0, str(WEB_DIR))

from mesh_web import display, service_clients, session  # noqa: E402

JUNE_1_2024_10H_UTC = 1717236000


def _dataset(**fields: object) -> dataset_pb2.Dataset:
    base: dict[str, object] = {
        "id": "22222222-2222-4222-8222-222222222222",
        "name": "orders-per-minute",
        "description": "Orders placed on the shop",
        "unit": "orders/min",
        "point_count": 1234567,
        "create_time": timestamp_pb2.Timestamp(seconds=JUNE_1_2024_10H_UTC),
    }
    base.update(fields)
    return dataset_pb2.Dataset(**base)  # type: ignore[arg-type]


def _row(name: str, id: str = "") -> display.DatasetRow:
    return display.dataset_row(_dataset(name=name, id=id or f"id-{name}"))


# --- datasets as table rows ---------------------------------------------------


def test_a_dataset_becomes_a_row_of_formatted_text() -> None:
    assert display.dataset_row(_dataset()) == display.DatasetRow(
        id="22222222-2222-4222-8222-222222222222",
        name="orders-per-minute",
        description="Orders placed on the shop",
        unit="orders/min",
        point_count="1,234,567",
        created="2024-06-01 10:00 UTC",
    )


def test_a_unitless_dataset_shows_a_dash_not_an_empty_cell() -> None:
    assert display.dataset_row(_dataset(unit="")).unit == display.MISSING


def test_a_dataset_without_create_time_shows_a_dash() -> None:
    dataset = _dataset()
    dataset.ClearField("create_time")
    assert display.dataset_row(dataset).created == display.MISSING


@pytest.mark.parametrize(("count", "text"), [(0, "0"), (999, "999"), (1000, "1,000"), (1234567, "1,234,567")])
def test_counts_have_thousands_separators(count: int, text: str) -> None:
    assert display.format_count(count) == text


@pytest.fixture
def new_york_local_time() -> Iterator[None]:
    """The server process runs in a zone far from UTC."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("new_york_local_time")
def test_times_are_shown_in_utc_whatever_the_server_zone() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=JUNE_1_2024_10H_UTC, nanos=999_999_999)
    assert display.format_timestamp(stamp) == "2024-06-01 10:00 UTC"


def test_an_unset_timestamp_is_shown_as_missing() -> None:
    assert display.format_timestamp(timestamp_pb2.Timestamp()) == display.MISSING
    assert display.format_timestamp(None) == display.MISSING


# --- pages of datasets --------------------------------------------------------


def test_a_first_page_replaces_the_table() -> None:
    response = analytics_service_pb2.ListDatasetsResponse(
        datasets=[_dataset(name="a"), _dataset(name="b")], next_page_token="2", total_size=5
    )
    table = display.table_after_page([_row("stale")], response, appending=False)
    assert [row.name for row in table.rows] == ["a", "b"]
    assert (table.total_size, table.next_page_token) == (5, "2")


def test_load_more_appends_the_next_page_and_ends_without_a_token() -> None:
    response = analytics_service_pb2.ListDatasetsResponse(datasets=[_dataset(name="c")], total_size=3)
    table = display.table_after_page([_row("a"), _row("b")], response, appending=True)
    assert [row.name for row in table.rows] == ["a", "b", "c"]
    assert (table.total_size, table.next_page_token) == (3, "")


def test_the_total_never_claims_fewer_datasets_than_shown() -> None:
    # Datasets created between two pages: the server's count is behind the table.
    response = analytics_service_pb2.ListDatasetsResponse(datasets=[_dataset(name="c")], total_size=2)
    table = display.table_after_page([_row("a"), _row("b")], response, appending=True)
    assert table.total_size == 3


def test_a_page_does_not_repeat_a_dataset_already_shown() -> None:
    # The dataset created with the form was pinned at the end; its page arrives later.
    response = analytics_service_pb2.ListDatasetsResponse(
        datasets=[_dataset(name="c", id="id-c"), _dataset(name="new", id="id-new")], total_size=4
    )
    table = display.table_after_page([_row("a", id="id-a"), _row("new", id="id-new")], response, appending=True)
    assert [row.name for row in table.rows] == ["a", "new", "c"]


def test_a_created_dataset_past_the_loaded_pages_is_added_once() -> None:
    table = display.DatasetsTable([_row("a", id="id-a")], 150, "next")
    pinned = display.with_row(table, _row("zz", id="id-zz"))
    assert [row.name for row in pinned.rows] == ["a", "zz"]
    assert (pinned.total_size, pinned.next_page_token) == (150, "next")
    assert display.with_row(pinned, _row("zz", id="id-zz")) == pinned


@pytest.mark.parametrize(
    ("shown", "total", "text"),
    [
        (0, 0, "0 datasets"),
        (1, 1, "1 dataset"),
        (3, 3, "3 datasets"),
        (100, 250, "Showing 100 of 250 datasets"),
        (1000, 2500, "Showing 1,000 of 2,500 datasets"),
    ],
)
def test_the_summary_says_how_many_datasets_are_shown(shown: int, total: int, text: str) -> None:
    assert display.datasets_summary(shown, total) == text


def test_the_empty_state_says_how_to_create_a_dataset() -> None:
    assert "sample-data" in display.EMPTY_DATASETS_TEXT


# --- service failures as banner text ------------------------------------------


def test_an_unreachable_service_is_named_in_the_banner() -> None:
    error = Unavailable("failed to connect to all addresses; last error: Connection refused")
    assert display.service_error_text("analytics", error) == (
        "analytics service unavailable: failed to connect to all addresses; last error: Connection refused"
    )


def test_a_service_that_does_not_answer_in_time_counts_as_unavailable() -> None:
    text = display.service_error_text("analytics", DeadlineExceeded("Deadline Exceeded"))
    assert text == "analytics service unavailable: Deadline Exceeded"


def test_a_service_that_answers_with_an_error_shows_its_status_and_message() -> None:
    text = display.service_error_text("analytics", InvalidArgument("page_size: must be at most 1000"))
    assert text == "analytics service error (INVALID_ARGUMENT): page_size: must be at most 1000"


def test_an_error_without_a_message_shows_its_status_name() -> None:
    error = NotFound("dataset", "x")
    error.message = ""
    assert display.service_error_text("analytics", error) == "analytics service error (NOT_FOUND): NOT_FOUND"


def test_a_failed_grpc_call_becomes_the_unavailable_banner() -> None:
    from mesh_runtime.errors import from_rpc_error

    call_error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="failed to connect to all addresses",
    )
    text = display.service_error_text("analytics", from_rpc_error(call_error))
    assert text == "analytics service unavailable: failed to connect to all addresses"


# --- where the services are ---------------------------------------------------


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "analytics:50051", "[::1]:50051"])
def test_service_addresses_are_host_and_port(target: str) -> None:
    assert service_clients.parse_grpc_target(f" {target} ") == target


@pytest.mark.parametrize("target", ["localhost", ":50051", "analytics:grpc", "analytics:70000", "[]:50051"])
def test_an_address_without_host_or_port_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        service_clients.parse_grpc_target(target)


def test_settings_default_to_the_local_analytics_port_and_a_5_second_deadline() -> None:
    settings = load_settings(service_clients.ServiceSettings, environ={})
    assert settings.analytics_addr == "127.0.0.1:50051"
    assert settings.call_timeout_seconds == 5.0


def test_settings_come_from_the_environment() -> None:
    settings = load_settings(
        service_clients.ServiceSettings,
        environ={"ANALYTICS_ADDR": "10.0.0.7:6000", "MESH_CALL_TIMEOUT_SECONDS": "2.5"},
    )
    assert (settings.analytics_addr, settings.call_timeout_seconds) == ("10.0.0.7:6000", 2.5)


def test_a_bad_deadline_is_refused_naming_its_variable() -> None:
    with pytest.raises(ConfigError, match="MESH_CALL_TIMEOUT_SECONDS"):
        load_settings(service_clients.ServiceSettings, environ={"MESH_CALL_TIMEOUT_SECONDS": "0"})


def test_a_misconfigured_address_reaches_the_page_as_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_ADDR", "analytics")

    async def clients() -> service_clients.ServiceClients:
        return service_clients.service_clients()

    with pytest.raises(FailedPrecondition, match="web app misconfigured: ANALYTICS_ADDR"):
        asyncio.run(clients())


def test_clients_open_no_channel_until_a_stub_is_asked_for_and_are_per_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANALYTICS_ADDR", "127.0.0.1:50051")

    async def clients_twice() -> tuple[service_clients.ServiceClients, service_clients.ServiceClients]:
        return service_clients.service_clients(), service_clients.service_clients()

    first, again = asyncio.run(clients_twice())
    other_loop, _ = asyncio.run(clients_twice())
    assert first is again
    assert other_loop is not first
    assert first._channels == {}


# --- when the access token is renewed -----------------------------------------

RECEIVED = 1_700_000_000.0


def test_a_15_minute_token_is_renewed_a_minute_before_it_expires() -> None:
    assert session.renewal_time(RECEIVED, RECEIVED + 900) == RECEIVED + 840


def test_a_short_token_is_renewed_in_its_last_quarter_not_before_every_call() -> None:
    assert session.renewal_time(RECEIVED, RECEIVED + 20) == RECEIVED + 15


def test_a_token_that_arrives_already_expired_is_renewed_at_once() -> None:
    renew_at = session.renewal_time(RECEIVED, RECEIVED - 5)
    assert session.needs_renewal("token", renew_at, now=RECEIVED)


def test_a_fresh_token_is_used_as_it_is() -> None:
    renew_at = session.renewal_time(RECEIVED, RECEIVED + 900)
    assert not session.needs_renewal("token", renew_at, now=RECEIVED + 839)


def test_a_token_due_for_renewal_is_renewed() -> None:
    renew_at = session.renewal_time(RECEIVED, RECEIVED + 900)
    assert session.needs_renewal("token", renew_at, now=RECEIVED + 840)


def test_without_an_access_token_one_is_fetched() -> None:
    assert session.needs_renewal("", renew_at=RECEIVED + 900, now=RECEIVED)


def test_a_token_a_call_just_refused_is_renewed_even_if_it_looks_fresh() -> None:
    assert session.needs_renewal("old", renew_at=RECEIVED + 900, now=RECEIVED, rejected="old")


def test_a_refused_token_another_call_already_renewed_is_not_renewed_again() -> None:
    # Renewing again would spend the new refresh token for nothing.
    assert not session.needs_renewal("new", renew_at=RECEIVED + 900, now=RECEIVED, rejected="old")


class _TokenSource:
    """Hands out access tokens t1, t2, ... and records what each caller said was refused."""

    def __init__(self) -> None:
        self.rejected: list[str] = []

    async def __call__(self, rejected: str) -> str:
        self.rejected.append(rejected)
        return f"t{len(self.rejected)}"


def test_a_call_refused_as_unauthenticated_is_retried_once_with_a_renewed_token() -> None:
    tokens, calls = _TokenSource(), []

    async def list_datasets(token: str) -> str:
        calls.append(token)
        if token == "t1":
            raise Unauthenticated("token expired")
        return "datasets"

    assert asyncio.run(session.call_with_renewal(tokens, list_datasets)) == "datasets"
    assert calls == ["t1", "t2"]
    assert tokens.rejected == ["", "t1"]


def test_a_call_refused_twice_ends_in_unauthenticated_without_a_third_try() -> None:
    tokens, calls = _TokenSource(), []

    async def list_datasets(token: str) -> str:
        calls.append(token)
        raise Unauthenticated("forged token")

    with pytest.raises(Unauthenticated):
        asyncio.run(session.call_with_renewal(tokens, list_datasets))
    assert calls == ["t1", "t2"]


@pytest.mark.parametrize("error", [PermissionDenied("analysts only"), Unavailable("connection refused")])
def test_other_failures_are_not_retried(error: MeshError) -> None:
    tokens, calls = _TokenSource(), []

    async def create_dataset(token: str) -> str:
        calls.append(token)
        raise error

    with pytest.raises(type(error)):
        asyncio.run(session.call_with_renewal(tokens, create_dataset))
    assert calls == ["t1"]


def test_calls_carry_the_access_token_as_a_bearer_header() -> None:
    assert service_clients.bearer_metadata("abc.def.ghi") == (("authorization", "Bearer abc.def.ghi"),)


# --- what a role may do -------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "name", "can_edit"),
    [
        (access_pb2.ROLE_VIEWER, "viewer", False),
        (access_pb2.ROLE_ANALYST, "analyst", True),
        (access_pb2.ROLE_ADMIN, "admin", True),
        (access_pb2.ROLE_UNSPECIFIED, "", False),
    ],
)
def test_analysts_and_admins_may_create_datasets_viewers_may_not(role: int, name: str, can_edit: bool) -> None:
    assert session.role_name(role) == name
    assert session.can_edit_datasets(role) is can_edit


def test_an_unknown_role_has_no_name() -> None:
    assert session.role_name(42) == ""


# --- failed sign-ins and failed creates as text -------------------------------


def _failed_call(error: MeshError) -> MeshError:
    """``error`` as a client reads it back from the wire (code, message, packed details)."""
    status = rpc_status.to_status(error.to_status())
    call_error = grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), details=status.details
    )
    return from_rpc_error(call_error)


def _throttled(retry_after: float | None) -> MeshError:
    error = ResourceExhausted("too many failed sign-ins")
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        error.details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    return _failed_call(error)


def test_wrong_credentials_are_shown_beside_the_login_form() -> None:
    problem = display.login_problem(_failed_call(Unauthenticated("wrong username or password")))
    assert problem == display.CallProblem(form_error="Wrong username or password")


def test_a_username_too_long_for_any_account_is_wrong_credentials_too() -> None:
    error = InvalidArgument("invalid", violations=[FieldViolation("username", "value length must be at most 64")])
    assert display.login_problem(_failed_call(error)).form_error == "Wrong username or password"


def test_throttled_sign_ins_say_how_long_to_wait_rounded_up() -> None:
    problem = display.login_problem(_throttled(retry_after=29.2))
    assert problem == display.CallProblem(form_error="Too many attempts — try again in 30 s")


def test_throttled_sign_ins_without_a_retry_delay_say_later() -> None:
    assert display.login_problem(_throttled(retry_after=None)).form_error == "Too many attempts — try again later"


def test_a_retry_delay_under_a_second_is_shown_as_one_second() -> None:
    assert display.retry_after_seconds(_throttled(retry_after=0.2)) == 1


def test_analytics_down_at_sign_in_shows_the_service_banner_not_a_form_error() -> None:
    problem = display.login_problem(_failed_call(Unavailable("connection refused")))
    assert problem == display.CallProblem(banner="analytics service unavailable: connection refused")


def test_invalid_fields_of_a_new_dataset_are_listed_by_form_field() -> None:
    error = _failed_call(
        InvalidArgument(
            "invalid request",
            violations=[
                FieldViolation("dataset.name", "does not match regex pattern `^[A-Za-z0-9][A-Za-z0-9._-]*$`"),
                FieldViolation("dataset.unit", "value length must be at most 32 characters"),
            ],
        )
    )
    assert display.create_dataset_errors(error, "bad name!") == [
        "name: does not match regex pattern `^[A-Za-z0-9][A-Za-z0-9._-]*$`",
        "unit: value length must be at most 32 characters",
    ]


def test_a_taken_dataset_name_is_said_plainly() -> None:
    error = _failed_call(AlreadyExists("dataset", "cpu.load"))
    assert display.create_dataset_errors(error, "cpu.load") == [
        "A dataset named 'cpu.load' already exists — choose another name"
    ]


def test_a_role_that_may_not_create_datasets_is_told_so() -> None:
    error = _failed_call(PermissionDenied("CreateDataset needs the analyst role"))
    assert display.create_dataset_errors(error, "x") == [
        "Your role may not create datasets: CreateDataset needs the analyst role"
    ]


def test_analytics_down_while_creating_is_said_beside_the_form() -> None:
    error = _failed_call(Unavailable("connection refused"))
    assert display.create_dataset_errors(error, "x") == ["analytics service unavailable: connection refused"]


# --- several calls at once, one token ------------------------------------------


def test_calls_made_together_share_one_token_and_keep_their_errors() -> None:
    tokens, calls = _TokenSource(), []

    async def datasets(token: str) -> str:
        calls.append(("datasets", token))
        return "datasets"

    async def subscriptions(token: str) -> str:
        calls.append(("subscriptions", token))
        raise Unavailable("notify is down")

    results = asyncio.run(session.call_all_with_renewal(tokens, [datasets, subscriptions]))
    assert results[0] == "datasets"
    assert isinstance(results[1], Unavailable)
    assert sorted(calls) == [("datasets", "t1"), ("subscriptions", "t1")]
    assert tokens.rejected == [""]


def test_only_the_refused_calls_are_made_again_with_a_renewed_token() -> None:
    tokens, calls = _TokenSource(), []

    async def datasets(token: str) -> str:
        calls.append(("datasets", token))
        return "datasets"

    async def results_list(token: str) -> str:
        calls.append(("results", token))
        if token == "t1":
            raise Unauthenticated("token expired")
        return "results"

    results = asyncio.run(session.call_all_with_renewal(tokens, [datasets, results_list]))
    assert results == ["datasets", "results"]
    assert sorted(calls) == [("datasets", "t1"), ("results", "t1"), ("results", "t2")]
    assert tokens.rejected == ["", "t1"]


def test_calls_refused_twice_end_the_session() -> None:
    tokens = _TokenSource()

    async def refused(token: str) -> str:
        raise Unauthenticated("forged token")

    with pytest.raises(Unauthenticated):
        asyncio.run(session.call_all_with_renewal(tokens, [refused, refused]))
    assert tokens.rejected == ["", "t1"]


def test_a_page_url_ends_with_the_id_it_shows() -> None:
    from mesh_web.auth_state import last_path_segment

    assert last_path_segment("/results/8f3e0c0a-1111-4111-8111-111111111111") == "8f3e0c0a-1111-4111-8111-111111111111"
    assert last_path_segment("/datasets/abc/") == "abc"


# --- what never reaches a log -------------------------------------------------


def test_a_failed_event_is_logged_by_its_handler_without_headers_or_payload() -> None:
    from mesh_web.log_redaction import redact

    logged = (
        "Error processing event queue entry for \nEvent(name='state.mailbox_state.open_message', router_data="
        "{'pathname': '/mailbox', 'sid': 'S', 'headers': \n{'host': 'h', 'cookie': 'mesh_refresh_token=SECRET}, "
        "more', 'authorization': 'Bearer eyJ.x'}, 'ip': '127.0.0.1', 'query': {}, 'token': 'T'}, "
        "payload={'form_data': {'password': 'hunter2'}}) [txid=7]:"
    )
    text = redact(logged)
    assert "state.mailbox_state.open_message" in text
    for secret in ("SECRET", "Bearer", "hunter2", "cookie", "more'"):
        assert secret not in text
    assert redact("{'headers': {'cookie': 'a=b'}, 'ip': 'x'}") == "{'headers': <not logged>, 'ip': 'x'}"


# --- the one origin the app answers -------------------------------------------


def test_the_web_origin_is_web_base_urls_scheme_host_and_port() -> None:
    from mesh_web.http_security import web_origin

    assert web_origin({}) == "http://127.0.0.1:3000"
    assert web_origin({"WEB_BASE_URL": "https://Analytics.Example.com/app/"}) == "https://analytics.example.com"
    assert web_origin({"WEB_BASE_URL": "http://localhost:8000"}) == "http://localhost:8000"


def test_a_web_base_url_that_is_not_http_is_refused_naming_it() -> None:
    from mesh_web.http_security import web_origin

    with pytest.raises(ConfigError, match="WEB_BASE_URL"):
        web_origin({"WEB_BASE_URL": "analytics.example.com"})


@pytest.mark.parametrize("url", ["", "redis://valkey:6379", "rediss://user:pw@cache.example.com:6380/0"])
def test_the_session_store_is_a_redis_url_or_none(url: str) -> None:
    settings = load_settings(service_clients.ServiceSettings, environ={"REFLEX_REDIS_URL": url})
    assert settings.redis_url == url


def test_a_session_store_that_is_not_redis_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="REFLEX_REDIS_URL"):
        load_settings(service_clients.ServiceSettings, environ={"REFLEX_REDIS_URL": "http://valkey:6379"})
