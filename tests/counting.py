"""A connection that counts the statements sent through it: how many round trips a
piece of work costs, asserted where that count is the point of a change."""

from typing import Any

import asyncpg

_SENDS = frozenset({"execute", "fetch", "fetchrow", "fetchval", "executemany"})


class Counting:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if name not in _SENDS:
            return method

        def counted(query: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(query)
            return method(query, *args, **kwargs)

        return counted
