"""One frame of `cqrs top`: figures per stage from two scrapes of each endpoint, and its view.

Rates are the counters' increase between the two scrapes over the time between them; the
end-to-end age quantiles come from the projectors' `cqrs_projector_event_age_seconds` buckets
observed in the same interval (all since the process started when nothing was applied in it).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from cqrs.top.quantile import bucket_delta, histogram_quantile
from cqrs.top.scrape import Scrape

AGE = "cqrs_projector_event_age_seconds"


@dataclass(frozen=True)
class Endpoint:
    """A process to scrape: ``kind`` is processor or projector; ``name`` heads its row."""

    name: str
    kind: str
    url: str


@dataclass(frozen=True)
class ProcessorRow:
    name: str
    error: str | None
    commands_per_s: float | None = None
    accepted_per_s: float | None = None
    rejected_per_s: float | None = None
    events_per_s: float | None = None
    consumer_lag: float | None = None
    producer_restarts: float | None = None


@dataclass(frozen=True)
class ProjectorRow:
    name: str
    error: str | None
    applied_per_s: float | None = None
    lag: float | None = None
    lag_seconds: float | None = None
    age_p50: float | None = None
    age_p99: float | None = None
    dlq_depth: float | None = None
    parked: float | None = None


@dataclass(frozen=True)
class Frame:
    processors: tuple[ProcessorRow, ...]
    projectors: tuple[ProjectorRow, ...]
    interval_s: float


def _rate(now: Scrape, before: Scrape | None, name: str, **labels: str) -> float | None:
    current = now.total(name, **labels)
    if before is None or not before.up or current is None or now.at <= before.at:
        return None
    previous = before.total(name, **labels) or 0.0
    if current < previous:  # the process restarted: its counters began again at 0
        return None
    return (current - previous) / (now.at - before.at)


def processor_row(name: str, now: Scrape, before: Scrape | None) -> ProcessorRow:
    if not now.up:
        return ProcessorRow(name, f"{now.url}: {now.error}")
    records = "cqrs_processor_records_total"
    accepted = _rate(now, before, records, outcome="accepted")
    rejected = _rate(now, before, records, outcome="rejected")
    return ProcessorRow(
        name, None,
        commands_per_s=_rate(now, before, records),  # every outcome, not only the two shown
        accepted_per_s=accepted,
        rejected_per_s=rejected,
        events_per_s=_rate(now, before, "cqrs_processor_events_total"),
        consumer_lag=now.total("cqrs_processor_consumer_lag"),
        producer_restarts=now.total("cqrs_processor_producer_restarts_total"),
    )


def projector_row(name: str, now: Scrape, before: Scrape | None) -> ProjectorRow:
    if not now.up:
        return ProjectorRow(name, f"{now.url}: {now.error}")
    buckets = now.buckets(AGE)
    if before is not None and before.up:
        recent = bucket_delta(buckets, before.buckets(AGE))
        if histogram_quantile(0.5, recent) is not None:
            buckets = recent
    lag_seconds = [s.value for s in now.select("cqrs_projector_lag_seconds")]
    return ProjectorRow(
        name, None,
        applied_per_s=_rate(now, before, "cqrs_projector_records_total", outcome="applied"),
        lag=now.total("cqrs_projector_lag"),
        lag_seconds=max(lag_seconds) if lag_seconds else None,
        age_p50=histogram_quantile(0.5, buckets),
        age_p99=histogram_quantile(0.99, buckets),
        dlq_depth=now.total("cqrs_projector_dlq_depth"),
        parked=now.total("cqrs_projector_parked_streams"),
    )


def build_frame(endpoints: list[Endpoint], now: dict[str, Scrape],
                before: dict[str, Scrape] | None = None) -> Frame:
    """The frame for ``now`` (scrapes by endpoint name), with rates against ``before``."""
    before = before or {}
    processors = tuple(processor_row(e.name, now[e.name], before.get(e.name))
                       for e in endpoints if e.kind == "processor")
    projectors = tuple(projector_row(e.name, now[e.name], before.get(e.name))
                       for e in endpoints if e.kind == "projector")
    gaps = [now[name].at - scrape.at for name, scrape in before.items() if name in now]
    return Frame(processors, projectors, max(gaps) if gaps else 0.0)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 120:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m{int(value % 60):02d}s"


def _state(error: str | None) -> Text:
    return Text("down", style="bold red") if error else Text("up", style="green")


def render(frame: Frame) -> RenderableType:
    """Two tables (the processor, the projectors) and a line per endpoint that is down."""
    processors = Table("processor", "state", "commands/s", "accepted/s", "rejected/s",
                       "events/s", "lag", "restarts", box=box.SIMPLE_HEAD, pad_edge=False,
                       title="write side (lag: commands; restarts: producer)",
                       title_justify="left")
    for p in frame.processors:
        processors.add_row(p.name, _state(p.error), rate(p.commands_per_s),
                           rate(p.accepted_per_s), rate(p.rejected_per_s),
                           rate(p.events_per_s), count(p.consumer_lag),
                           count(p.producer_restarts))
    projectors = Table("projector", "state", "applied/s", "lag", "lag age", "age p50",
                       "age p99", "DLQ", "parked", box=box.SIMPLE_HEAD, pad_edge=False,
                       title="read side (lag: events; age: occurred -> applied)",
                       title_justify="left")
    for r in frame.projectors:
        projectors.add_row(r.name, _state(r.error), rate(r.applied_per_s), count(r.lag),
                           seconds(r.lag_seconds), seconds(r.age_p50), seconds(r.age_p99),
                           count(r.dlq_depth), count(r.parked))
    rows: list[ProcessorRow | ProjectorRow] = [*frame.processors, *frame.projectors]
    down = [Text(f"{row.name}: down ({row.error})", style="red") for row in rows if row.error]
    window = (f"rates over the last {frame.interval_s:.1f}s" if frame.interval_s
              else "rates need a second scrape")
    return Group(processors, projectors, *down, Text(window, style="dim"))
