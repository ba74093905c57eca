"""`cqrs top`: frames from canned metrics text; an endpoint that does not answer is "down"."""

from __future__ import annotations

import math

import httpx
from rich.console import Console
from typer.testing import CliRunner

from cqrs.top import Endpoint, build_frame, render, scrape
from cqrs.top.quantile import histogram_quantile

P = 'prefix="cqrs."'
PROCESSOR_BEFORE = f"""
# TYPE cqrs_processor_records_total counter
cqrs_processor_records_total{{{P},outcome="accepted"}} 100.0
cqrs_processor_records_total{{{P},outcome="rejected"}} 10.0
cqrs_processor_records_total{{{P},outcome="duplicate"}} 5.0
# TYPE cqrs_processor_events_total counter
cqrs_processor_events_total{{{P}}} 150.0
# TYPE cqrs_processor_consumer_lag gauge
cqrs_processor_consumer_lag{{{P},partition="0"}} 3.0
cqrs_processor_consumer_lag{{{P},partition="1"}} 4.0
# TYPE cqrs_processor_producer_restarts_total counter
cqrs_processor_producer_restarts_total{{{P}}} 1.0
"""
PROCESSOR_NOW = (PROCESSOR_BEFORE
                 .replace('"accepted"} 100.0', '"accepted"} 300.0')
                 .replace('"rejected"} 10.0', '"rejected"} 30.0')
                 .replace('"duplicate"} 5.0', '"duplicate"} 9.0')
                 .replace("150.0", "450.0"))


def _projector(applied: float, buckets: tuple[float, float, float, float]) -> str:
    le = ("0.01", "0.1", "1.0", "+Inf")
    lines = "\n".join(
        f'cqrs_projector_event_age_seconds_bucket{{{P},projector="postgres",le="{bound}"}} '
        f"{count}" for bound, count in zip(le, buckets, strict=True))
    return f"""
# TYPE cqrs_projector_records_total counter
cqrs_projector_records_total{{{P},projector="postgres",outcome="applied"}} {applied}
cqrs_projector_records_total{{{P},projector="postgres",outcome="skipped"}} 7.0
# TYPE cqrs_projector_event_age_seconds histogram
{lines}
cqrs_projector_event_age_seconds_count{{{P},projector="postgres"}} {buckets[-1]}
cqrs_projector_event_age_seconds_sum{{{P},projector="postgres"}} 1.0
# TYPE cqrs_projector_lag gauge
cqrs_projector_lag{{{P},projector="postgres",partition="0"}} 12.0
cqrs_projector_lag{{{P},projector="postgres",partition="1"}} 30.0
# TYPE cqrs_projector_lag_seconds gauge
cqrs_projector_lag_seconds{{{P},projector="postgres"}} 2.5
# TYPE cqrs_projector_dlq_depth gauge
cqrs_projector_dlq_depth{{{P},projector="postgres"}} 2.0
# TYPE cqrs_projector_parked_streams gauge
cqrs_projector_parked_streams{{{P},projector="postgres"}} 1.0
"""


ENDPOINTS = [Endpoint("processor", "processor", "http://p/metrics"),
             Endpoint("postgres", "projector", "http://pg/metrics"),
             Endpoint("search", "projector", "http://search/metrics")]


def _fetch(pages: dict[str, str]):  # type: ignore[no-untyped-def]
    def fetch(url: str) -> str:
        if url not in pages:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return pages[url]
    return fetch


def _text(renderable: object) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_a_frame_shows_rates_lag_age_and_dead_letters() -> None:
    before_pages = {"http://p/metrics": PROCESSOR_BEFORE,
                    "http://pg/metrics": _projector(1000, (0, 0, 0, 0))}
    now_pages = {"http://p/metrics": PROCESSOR_NOW,
                 "http://pg/metrics": _projector(1400, (100, 300, 400, 400))}
    before = {e.name: scrape(e.url, 10.0, _fetch(before_pages)) for e in ENDPOINTS}
    now = {e.name: scrape(e.url, 12.0, _fetch(now_pages)) for e in ENDPOINTS}
    frame = build_frame(ENDPOINTS, now, before)

    processor, = frame.processors
    # Every outcome: (200 accepted + 20 rejected + 4 duplicate) / 2 s.
    assert processor.commands_per_s == 112.0
    assert (processor.accepted_per_s, processor.rejected_per_s) == (100.0, 10.0)
    assert processor.events_per_s == 150.0
    assert (processor.consumer_lag, processor.producer_restarts) == (7.0, 1.0)
    postgres, search = frame.projectors
    assert postgres.applied_per_s == 200.0
    assert (postgres.lag, postgres.lag_seconds) == (42.0, 2.5)
    assert (postgres.dlq_depth, postgres.parked) == (2.0, 1.0)
    # 400 observations: 100 <= 10 ms, 200 more <= 100 ms, 100 more <= 1 s
    assert math.isclose(postgres.age_p50 or 0, 0.01 + 0.09 * 100 / 200)
    assert math.isclose(postgres.age_p99 or 0, 0.1 + 0.9 * 96 / 100)
    assert search.error is not None
    assert "search" in search.error

    text = _text(render(frame))
    assert "112.0" in text
    assert "150.0" in text
    assert "200.0" in text
    assert "55ms" in text
    assert "964ms" in text
    assert "2.5s" in text
    assert "search: down (http://search/metrics: ConnectError" in text
    assert "rates over the last 2.0s" in text


def test_the_first_frame_has_no_rates_yet() -> None:
    pages = {"http://p/metrics": PROCESSOR_BEFORE,
             "http://pg/metrics": _projector(1000, (1, 2, 3, 4))}
    frame = build_frame(ENDPOINTS, {e.name: scrape(e.url, 1.0, _fetch(pages))
                                    for e in ENDPOINTS})
    assert frame.processors[0].commands_per_s is None
    assert frame.processors[0].consumer_lag == 7.0
    # without a second scrape the quantiles come from everything since the process started
    assert frame.projectors[0].age_p50 is not None
    assert "rates need a second scrape" in _text(render(frame))


def test_a_restarted_process_gives_no_negative_rate() -> None:
    pages_before = {"http://p/metrics": PROCESSOR_NOW}
    pages_now = {"http://p/metrics": PROCESSOR_BEFORE}
    endpoints = ENDPOINTS[:1]
    frame = build_frame(endpoints, {"processor": scrape("http://p/metrics", 2, _fetch(pages_now))},
                        {"processor": scrape("http://p/metrics", 1, _fetch(pages_before))})
    assert frame.processors[0].commands_per_s is None


def test_garbage_and_http_errors_are_down_never_a_traceback() -> None:
    def fetch(url: str) -> str:
        if "garbage" in url:
            return "this is { not metrics"
        raise httpx.HTTPStatusError("503", request=httpx.Request("GET", url),
                                    response=httpx.Response(503))
    assert not scrape("http://garbage/metrics", 0, fetch).up
    assert not scrape("http://x/metrics", 0, fetch).up


def test_histogram_quantile_matches_promql() -> None:
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {math.inf: 0}) is None
    assert histogram_quantile(0.5, {1.0: 10, math.inf: 10}) == 0.5
    assert histogram_quantile(0.99, {1.0: 0, math.inf: 10}) == 1.0  # in +Inf: its lower bound


def test_once_prints_one_frame_with_every_endpoint_down() -> None:
    from cqrs.cli import app  # the whole command line, as a user runs it

    closed = "http://127.0.0.1:9/metrics"
    result = CliRunner().invoke(app, ["top", "--once", "--interval", "0.2", "--processor",
                                      closed, "--postgres", closed, "--search", closed])
    assert result.exit_code == 0, result.output
    assert result.output.count("down") >= 6


def test_the_default_urls_are_the_settings_ports() -> None:
    """`cqrs top` scrapes where the processes serve: the bootstrap's settings, read once."""
    from cqrs.bootstrap import Bootstrap
    from cqrs.cli import app
    from cqrs.settings import Settings

    settings = Settings(processor_metrics_port=9, projector_postgres_metrics_port=9,
                        projector_search_metrics_port=9)
    result = CliRunner().invoke(app, ["top", "--once", "--interval", "0.2"],
                                obj=Bootstrap(settings))
    assert result.exit_code == 0, result.output
    assert result.output.count("down") >= 6
    config = Bootstrap(Settings(processor_metrics_port=19401)).config
    assert config.metrics_url("processor") == "http://127.0.0.1:19401/metrics"
    assert config.metrics_url("search") == "http://127.0.0.1:9403/metrics"
