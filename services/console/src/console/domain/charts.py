"""The compliance dashboard's numbers and its two charts, drawn as SVG geometry on
the server (no chart script, nothing for the Content-Security-Policy to allow). Pure.

Both charts read the compliance report's obligation rows, the same rows as its CSV:
* on-time share per month (by the month the clock started), and
* time to notice as a share of the time allowed: how close to the deadline notices
  are given, with the late ones beyond 100 %.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 64
MARGIN_BOTTOM = 36
MARGIN_TOP = 16


@dataclass(frozen=True)
class Bar:
    label: str
    value_text: str
    x: float
    y: float
    width: float
    height: float
    tone: str
    """css class: ``good``, ``bad`` or ``neutral``."""

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[tuple[float, str], ...]
    """(y, label) of the horizontal grid lines."""
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def axis_x(self) -> int:
        """Where the value labels end and the grid lines start."""
        return MARGIN_LEFT - 6

    @property
    def baseline(self) -> float:
        return self.height - MARGIN_BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars


def _bars(values: Sequence[tuple[str, float, str, str]], top: float) -> tuple[Bar, ...]:
    """(label, value, value text, tone) to bars on a 0..top scale."""
    if not values:
        return ()
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    slot = plot_w / len(values)
    width = max(4.0, min(56.0, slot * 0.7))
    bars = []
    for i, (label, value, text, tone) in enumerate(values):
        h = 0.0 if top <= 0 else plot_h * min(value, top) / top
        x = MARGIN_LEFT + i * slot + (slot - width) / 2
        bars.append(
            Bar(
                label,
                text,
                round(x, 1),
                round(HEIGHT - MARGIN_BOTTOM - h, 1),
                round(width, 1),
                round(h, 1),
                tone,
            )
        )
    return tuple(bars)


def _ticks(labels: Sequence[str]) -> tuple[tuple[float, str], ...]:
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    n = len(labels) - 1
    return tuple(
        (round(HEIGHT - MARGIN_BOTTOM - plot_h * i / n, 1), label)
        for i, label in enumerate(labels)
    )


def rows_of(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [o for e in report.get("episodes", []) for o in e.get("obligations", [])]


def on_time_by_month(rows: Iterable[Mapping[str, Any]]) -> Chart:
    decided: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["outcome"] in ("met", "late", "missing"):
            decided[str(row["clock_start"])[:7]].append(row["outcome"])
    values = []
    for month in sorted(decided):
        outcomes = decided[month]
        share = outcomes.count("met") / len(outcomes)
        tone = "good" if share >= 0.95 else "bad" if share < 0.8 else "neutral"
        values.append((month, share, f"{share:.0%} of {len(outcomes)}", tone))
    return Chart(
        title="Notices given on time, by month",
        description="Share of duties whose notice was given by the deadline, by the "
        "month the clock started. Duties not yet due are left out.",
        bars=_bars(values, 1.0),
        y_ticks=_ticks(["0 %", "25 %", "50 %", "75 %", "100 %"]),
    )


BUCKETS: tuple[tuple[str, float, str], ...] = (
    ("≤25 %", 0.25, "good"),
    ("≤50 %", 0.5, "good"),
    ("≤75 %", 0.75, "good"),
    ("≤100 %", 1.0, "neutral"),
    ("≤200 %", 2.0, "bad"),
    (">200 %", float("inf"), "bad"),
)


def time_to_notice(rows: Iterable[Mapping[str, Any]]) -> Chart:
    counts = [0] * len(BUCKETS)
    for row in rows:
        taken, allowed = row.get("seconds_to_notice"), row.get("allowed_seconds")
        if taken is None or not allowed:
            continue
        ratio = float(taken) / float(allowed)
        counts[next(i for i, b in enumerate(BUCKETS) if ratio <= b[1])] += 1
    top = max(counts) if any(counts) else 0
    values = [
        (label, float(n), str(n), tone)
        for (label, _, tone), n in zip(BUCKETS, counts, strict=True)
    ]
    step = max(1, -(-top // 4))
    return Chart(
        title="Time to notice, against the time allowed",
        description="How many notices were given within each share of the time the "
        "law allows; past 100 % the notice was late.",
        bars=_bars(values, step * 4) if top else (),
        y_ticks=_ticks([str(step * i) for i in range(5)]) if top else (),
    )
