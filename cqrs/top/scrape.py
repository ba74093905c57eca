"""One scrape of a Prometheus text endpoint: its samples, or why there are none."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Fetch = Callable[[str], str]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """What one endpoint answered at ``at`` (monotonic seconds); ``error`` when it did not."""

    url: str
    at: float
    samples: tuple[Sample, ...] = ()
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.error is None

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name
                and all(s.labels.get(key) == value for key, value in labels.items())]

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of the matching samples, None when there is none (not the same as 0)."""
        found = self.select(name, **labels)
        return math.fsum(s.value for s in found) if found else None

    def buckets(self, name: str) -> dict[float, float]:
        """A histogram's cumulative bucket counts by upper bound, summed over its series."""
        counts: dict[float, float] = {}
        for sample in self.select(f"{name}_bucket"):
            bound = float(sample.labels.get("le", "nan"))
            counts[bound] = counts.get(bound, 0.0) + sample.value
        return counts


def http_fetch(url: str) -> str:
    response = httpx.get(url, timeout=0.8)
    response.raise_for_status()
    return response.text


def parse(text: str) -> tuple[Sample, ...]:
    return tuple(Sample(sample.name, dict(sample.labels), sample.value)
                 for family in text_string_to_metric_families(text)
                 for sample in family.samples)


def scrape(url: str, at: float, fetch: Fetch = http_fetch) -> Scrape:
    """Fetch and parse ``url``; any failure (refused, timeout, HTTP error, not the text format)
    is an answer with ``error`` set, never an exception."""
    try:
        return Scrape(url, at, parse(fetch(url)))
    except Exception as error:
        return Scrape(url, at, error=_short(error))


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:120] if text else type(error).__name__
