"""The LISTEN connection outlives a dropped connection: it says it is down,
opens again by itself, says it is back, and notifications flow again."""

from __future__ import annotations

import asyncio
import secrets

import psycopg2

from mesh_runtime.pg_listen import PgListener
from tests.conftest import RunningStack
from tests.eventually import eventually_async


def _sql(dsn: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg2.connect(dsn, connect_timeout=5) as conn, conn.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def test_a_dropped_listen_connection_is_reported_and_opened_again(mesh: RunningStack) -> None:
    dsn = mesh.database_url()
    channel = f"mesh_test_{secrets.token_hex(4)}"

    async def scenario() -> list[str]:
        heard: asyncio.Queue[str] = asyncio.Queue()
        states: list[str] = []
        listener = PgListener(
            dsn,
            [channel],
            lambda _c, payload: heard.put_nowait(payload),
            on_connect=lambda: states.append("up"),
            on_lost=lambda: states.append("lost"),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(listener.run(stop))
        await asyncio.wait_for(listener.connected.wait(), 30)
        await asyncio.to_thread(_sql, dsn, "SELECT pg_notify(%s, 'one')", (channel,))
        assert await asyncio.wait_for(heard.get(), 30) == "one"

        # The server ends the connection, as a restart or an administrator would.
        (killed,) = await asyncio.to_thread(
            _sql,
            dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            (f'LISTEN "{channel}"',),
        )
        assert killed == (True,)
        # Lost and back again, with nobody restarting anything.
        async def back() -> bool:
            assert not task.done(), "the listener stopped instead of reconnecting"
            return states == ["up", "lost", "up"] and listener.connected.is_set()

        await eventually_async(back, 60, lambda: f"the listener back (seen: {states})", interval=0.05)
        await asyncio.to_thread(_sql, dsn, "SELECT pg_notify(%s, 'two')", (channel,))
        assert await asyncio.wait_for(heard.get(), 30) == "two"
        stop.set()
        await asyncio.wait_for(task, 30)
        assert not listener.connected.is_set()
        return states

    assert asyncio.run(asyncio.wait_for(scenario(), 120)) == ["up", "lost", "up"]  # stopping is not a loss
