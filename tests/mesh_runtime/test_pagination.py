"""Page tokens are opaque, round-trip, and refuse tokens of other queries."""

from __future__ import annotations

import pytest

from mesh_runtime.errors import InvalidArgument
from mesh_runtime.pagination import (
    MAX_PAGE_SIZE,
    PageRequest,
    decode_page_token,
    encode_page_token,
    next_page,
    page_size,
    text_key,
)


def test_round_trip() -> None:
    token = encode_page_token(["b", 3], "datasets")
    assert decode_page_token(token, "datasets") == ["b", 3]
    assert decode_page_token("", "datasets") is None


@pytest.mark.parametrize("token", ["garbage", "eyJhIjoxfQ", "!!!", encode_page_token(["x"], "other")])
def test_foreign_or_broken_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, "datasets")
    assert [v.field for v in caught.value.violations] == ["page_token"]


def test_shape_check_rejects_wrong_keys() -> None:
    def one_string(after: list[object]) -> str:
        (value,) = after
        if not isinstance(value, str):
            raise TypeError("str expected")
        return value

    with pytest.raises(InvalidArgument):
        decode_page_token(encode_page_token([1, 2], "q"), "q", one_string)
    assert decode_page_token(encode_page_token(["k"], "q"), "q", one_string) == "k"


def test_page_size_defaults_and_caps() -> None:
    assert page_size(0) == 50
    assert page_size(7) == 7
    assert page_size(10**6) == MAX_PAGE_SIZE


def test_next_page_cuts_the_extra_row_and_resumes_after_the_last_one_shown() -> None:
    names = ["a", "b", "c", "d"]
    page, token = next_page(names, 3, "datasets", lambda name: [name])
    assert page == ["a", "b", "c"] and decode_page_token(token, "datasets", text_key) == "c"
    assert next_page(names[:3], 3, "datasets", lambda name: [name]) == (["a", "b", "c"], "")  # the last page


def test_a_page_request_walks_a_list_page_by_page() -> None:
    names = [f"n{i:02}" for i in range(7)]
    shown, token = [], ""
    while True:
        page = PageRequest.of(token, 3, "datasets", text_key)
        fetched = [n for n in names if page.after is None or n > page.after][: page.fetch]
        rows, token = page.cut(fetched, lambda name: [name])
        shown.append(rows)
        if not token:
            break
    assert shown == [names[0:3], names[3:6], names[6:7]]
    with pytest.raises(InvalidArgument):
        PageRequest.of(token or encode_page_token(["n01"], "results"), 3, "datasets", text_key)
