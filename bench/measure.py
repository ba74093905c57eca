"""Measurements: counts sampled over time, rates from the first progress to the target."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Sample = tuple[float, int]
"""(seconds since the watch began, count reached)."""


class StageTimeout(RuntimeError):
    """A stage did not reach its target in time (the worker logs say why)."""


@dataclass
class Measurement:
    """`count` items in `seconds`, from the first observed progress to the last item.

    The items done before the first observation (the first batch) are excluded from `count`, so
    start-up (joining a group, restoring, migrating) never enters the rate.
    """

    count: int
    seconds: float
    series: list[Sample] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "series": [[round(t, 3), n] for t, n in self.series],
        }


def watch(
    read: Callable[[], int],
    target: int,
    timeout: float,
    what: str,
    tick: Callable[[int], None] | None = None,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> Measurement:
    """Poll `read` until it reaches `target`; the rate runs from the first sample above zero."""
    began = time.monotonic()
    series: list[Sample] = []
    first: Sample | None = None
    while True:
        count = read()
        now = time.monotonic() - began
        if not series or series[-1][1] != count:
            series.append((now, count))
        if tick is not None:
            tick(count)
        if count > 0 and first is None:
            first = (now, count)
        if count >= target:
            break
        if now > timeout:
            raise StageTimeout(f"{what}: {count}/{target} after {timeout:.0f}s")
        if alive is not None and not alive():
            raise StageTimeout(f"{what}: worker exited at {count}/{target}")
        time.sleep(interval)
    assert first is not None
    if first[1] >= target:  # everything in one step: no interval to measure over
        return Measurement(target, max(now, interval), series)
    return Measurement(target - first[1], now - first[0], series)


def timed(count: int, started: float, series: list[Sample]) -> Measurement:
    """A measurement of `count` items since the `time.monotonic()` value `started`."""
    return Measurement(count, time.monotonic() - started, series)


def from_log(points: list[Sample], target: int, start: float | None = None) -> Measurement:
    """A measurement from a worker's own log timestamps (`(epoch seconds, running total)`).

    With `start` (e.g. the moment the processor owned its partitions), every item counts, from
    `start` to the entry reaching `target`. Without it, from the first logged batch to that
    entry, the first batch's items excluded; if one batch held everything, there is no interval
    and the measurement is `count=0`.
    """
    end = next((at for at, total in points if total >= target), None)
    if end is None or not points:
        raise StageTimeout(f"log holds no entry reaching {target}")
    if start is not None:
        origin, counted = start, target
    else:
        origin, counted = points[0][0], target - points[0][1]
    series = [(at - origin, total) for at, total in points if at <= end]
    return Measurement(counted, end - origin, [(0.0, 0), *series] if start else series)
