"""The rules of a signed-in session: when its access token is renewed, how a
call is retried with a renewed one, and what its role lets the user do. No
Reflex and no network of their own, so they are unit-tested on their own
(tests/web/test_web_state.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from mesh.auth.v1 import access_pb2
from mesh_runtime.errors import MeshError, Unauthenticated

T = TypeVar("T")

RENEW_AT_MOST_SECONDS_EARLY = 60.0
"""Renew an access token this long before it expires (less for short-lived tokens)."""

REFRESH_COOKIE = "mesh_refresh_token"
"""Name of the browser cookie holding the session's refresh token."""

REFRESH_COOKIE_MAX_AGE_SECONDS = 14 * 24 * 3600
"""How long the browser keeps the refresh cookie: analytics' default session
life (AUTH_REFRESH_TOKEN_TTL_SECONDS). A cookie outliving its session only
makes one Refresh fail, which signs the user out."""


def renewal_time(received_at: float, expires_at: float) -> float:
    """When to renew an access token received at ``received_at`` (epoch seconds)
    that expires at ``expires_at``: a minute early, or a quarter of its
    lifetime early for tokens that live less than four minutes, so a short
    token is not renewed before every call."""
    lifetime = max(expires_at - received_at, 0.0)
    return expires_at - min(RENEW_AT_MOST_SECONDS_EARLY, lifetime / 4)


def needs_renewal(access_token: str, renew_at: float, now: float, rejected: str = "") -> bool:
    """Whether to trade the refresh token for a new access token before the
    next call: there is none, it is due for renewal, or a call just refused it
    (``rejected``; a token another event already renewed is used as it is)."""
    return not access_token or now >= renew_at or (bool(rejected) and access_token == rejected)


async def call_with_renewal(access_token: Callable[[str], Awaitable[str]], call: Callable[[str], Awaitable[T]]) -> T:
    """The result of ``call(token)``, made with ``await access_token("")``.

    When the call is refused with Unauthenticated (the token expired early,
    or the key that signed it was retired), it is made once more with
    ``await access_token(rejected)``, which renews the refused token; a second
    Unauthenticated is raised: the session is over. Other errors are raised
    as they are.
    """
    token = await access_token("")
    try:
        return await call(token)
    except Unauthenticated:
        pass
    return await call(await access_token(token))


async def call_all_with_renewal(
    access_token: Callable[[str], Awaitable[str]], calls: Sequence[Callable[[str], Awaitable[Any]]]
) -> list[Any]:
    """The results of ``calls``, made at the same time with one token from
    ``await access_token("")``; a call that fails with a MeshError gives that
    error as its result. The calls refused with Unauthenticated are made once
    more with ``await access_token(refused_token)``; a second Unauthenticated
    is raised: the session is over."""

    async def attempt(call: Callable[[str], Awaitable[Any]], token: str) -> Any:
        try:
            return await call(token)
        except MeshError as error:
            return error

    token = await access_token("")
    results = list(await asyncio.gather(*(attempt(call, token) for call in calls)))
    refused = [i for i, result in enumerate(results) if isinstance(result, Unauthenticated)]
    if not refused:
        return results
    renewed = await access_token(token)
    again = await asyncio.gather(*(attempt(calls[i], renewed) for i in refused))
    for i, result in zip(refused, again, strict=True):
        if isinstance(result, Unauthenticated):
            raise result
        results[i] = result
    return results


def role_name(role: int) -> str:
    """viewer, analyst or admin (the proto enum's name without its prefix); '' when unset."""
    if role == access_pb2.ROLE_UNSPECIFIED or role not in access_pb2.Role.values():
        return ""
    return access_pb2.Role.Name(role).removeprefix("ROLE_").lower()  # type: ignore[arg-type]


def can_edit_datasets(role: int) -> bool:
    """Whether the role may create datasets (analyst and above, as CreateDataset's access rule says)."""
    return role >= access_pb2.ROLE_ANALYST
