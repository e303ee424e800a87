"""One origin in front of several web replicas, as a load balancer would be:
each new TCP connection goes to the next replica that accepts it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools


class RoundRobinProxy:
    """Forwards each connection to ``127.0.0.1:PORT`` of the next of ``backends``."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._next = itertools.cycle(range(len(backends)))
        self.connections = [0] * len(backends)
        """How many connections each backend got."""
        self._server: asyncio.Server | None = None

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in self.backends:
            index = next(self._next)
            try:
                upstream = await asyncio.open_connection("127.0.0.1", self.backends[index])
            except OSError:
                continue  # a replica that is down: the next one answers
            self.connections[index] += 1
            break
        if upstream is None:
            client_writer.close()
            return
        reader, writer = upstream
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()
