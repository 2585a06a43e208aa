"""The loop every database-driven worker runs: the outbox relay, the timer scheduler
and the delivery worker.

A worker handles rows in batches (``run_once``). It goes round again at once while
batches come back full, sleeps otherwise until a NOTIFY on its channel wakes it, and
polls as the safety net (LISTEN/NOTIFY is best-effort). A worker that knows when its
next row falls due (``next_due``) sleeps exactly until then instead of a whole poll
interval. Unless a batch came back full, rounds start at least ``linger`` apart (as a
Kafka producer's ``linger.ms``): under load the rows that arrive meanwhile go in one
batch, instead of a round (and its statements) per row or two. That holds whatever
woke the worker: a NOTIFY often lands after the round that already took its row, and
the empty rounds it caused were half of a busy relay's rounds. An idle worker, whose
last round began longer ago than that, still answers its first row at once. A failing round (database or
broker away) backs off exponentially; it never hammers what is down and never ends
the loop.
"""

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta

import asyncpg

from shared.clock import Clock
from shared.db import Wakeup

logger = logging.getLogger(__name__)


class PollingWorker(ABC):
    """Subclasses give ``run_once`` (and maybe ``next_due``); ``start``/``stop`` run it."""

    name = "worker"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        channel: str,
        clock: Clock | None = None,
        batch_size: int,
        poll_interval: timedelta,
        max_backoff: timedelta = timedelta(seconds=30),
        linger: timedelta = timedelta(milliseconds=10),
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._batch_size = batch_size
        self._poll = poll_interval.total_seconds()
        self._max_backoff = max_backoff.total_seconds()
        self._linger = linger.total_seconds()
        self._wakeup = Wakeup(pool, channel)
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run_once(self) -> int:
        """Handle one batch; return how many rows it handled."""

    def next_due(self) -> datetime | None:
        """When the next known row falls due (set by ``run_once``), or None."""
        return None

    async def start(self) -> None:
        await self._wakeup.start()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._wakeup.stop()

    def _sleep_for(self) -> float:
        due = self.next_due()
        if due is None or self._clock is None:
            return self._poll
        # A floor: rows due but locked by another replica must not spin this loop.
        return min(self._poll, max((due - self._clock.now()).total_seconds(), 0.002))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff, began, full = 0.1, float("-inf"), False
        while True:
            if not full:
                await asyncio.sleep(max(began + self._linger - loop.time(), 0))
            # Cleared before the round, so a NOTIFY that lands during it is not lost.
            self._wakeup.clear()
            began = loop.time()
            try:
                handled = await self.run_once()
            except Exception:
                logger.exception(
                    "%s round failed; retrying in %.1fs", self.name, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                full = False
                continue
            backoff = 0.1
            full = handled >= self._batch_size
            if not full:  # more waiting when full: go on at once
                await self._wakeup.wait(self._sleep_for())
