"""A background round repeated at an interval while a service runs (gauges,
watchdogs, checkpoints): one place for the task's start, stop and error handling."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class Periodic:
    """Run ``round`` every ``interval`` seconds; a failed round is logged (and
    ``on_error`` called) and the next one runs on schedule."""

    def __init__(
        self,
        name: str,
        round: Callable[[], Awaitable[Any]],
        *,
        interval: float,
        wait_first: bool = False,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._round = round
        self._interval = interval
        self._wait_first = wait_first
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        if self._wait_first:
            await asyncio.sleep(self._interval)
        while True:
            try:
                await self._round()
            except Exception:
                logger.exception(
                    "%s: round failed; next in %.1fs", self._name, self._interval
                )
                if self._on_error is not None:
                    self._on_error()
            await asyncio.sleep(self._interval)
