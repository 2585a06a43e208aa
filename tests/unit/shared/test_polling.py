"""The worker loop's pacing: rounds at least ``linger`` apart while busy, at once when
a batch came back full or the worker was idle."""

import asyncio
from datetime import timedelta

from shared.polling import PollingWorker

LINGER = 0.04
SLACK = 0.005  # the event loop's clock may wake a timer a little early


class Wakeup:
    """Stands in for LISTEN/NOTIFY: ``wait`` returns after ``quiet`` seconds, as if a
    NOTIFY came then (0: one is always already waiting)."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self.woke: list[float] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def clear(self) -> None: ...

    async def wait(self, poll: float) -> None:  # noqa: ARG002 (the real signature)
        await asyncio.sleep(self.quiet)
        self.woke.append(asyncio.get_running_loop().time())


class Rounds(PollingWorker):
    def __init__(self, *, handled: int, quiet: float = 0.0) -> None:
        super().__init__(
            pool=None,  # type: ignore[arg-type]
            channel="test",
            batch_size=10,
            poll_interval=timedelta(seconds=1),
            linger=timedelta(seconds=LINGER),
        )
        self.wakeup = Wakeup(quiet)
        self._wakeup = self.wakeup  # type: ignore[assignment]
        self.handled = handled
        self.began: list[float] = []

    async def run_once(self) -> int:
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0)  # a real round awaits its database
        return self.handled


async def run_for(worker: Rounds, seconds: float) -> list[float]:
    await worker.start()
    await asyncio.sleep(seconds)
    await worker.stop()
    return [b - a for a, b in zip(worker.began, worker.began[1:], strict=False)]


async def test_a_busy_worker_notified_all_the_time_starts_rounds_linger_apart():
    gaps = await run_for(Rounds(handled=3), 0.4)
    assert len(gaps) >= 3
    assert min(gaps) >= LINGER - SLACK


async def test_an_empty_round_does_not_let_the_next_one_start_sooner():
    # A NOTIFY for rows the last round already took wakes an empty round.
    gaps = await run_for(Rounds(handled=0), 0.4)
    assert len(gaps) >= 3
    assert min(gaps) >= LINGER - SLACK


async def test_full_batches_go_on_at_once():
    worker = Rounds(handled=10)
    gaps = await run_for(worker, 0.2)
    assert len(worker.began) > 20
    assert max(gaps) < LINGER


async def test_an_idle_worker_answers_a_notify_at_once():
    worker = Rounds(handled=1, quiet=2 * LINGER)
    await run_for(worker, 0.5)
    assert len(worker.wakeup.woke) >= 3
    for woke in worker.wakeup.woke[:-1]:
        began = min(b for b in worker.began if b >= woke)
        assert began - woke < LINGER / 2
