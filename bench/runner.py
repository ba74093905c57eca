"""Run every stage in order, each in its own namespace; a failing stage is recorded, not fatal."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import plots, report, stage_kafka, stage_pipeline, stage_sinks, stage_state
from bench.config import BenchConfig
from bench.context import SIZES, Context, StageProgress, make_progress
from bench.infra import run_id
from bench.workload import BATCH

Stage = Callable[[Context], dict[str, Any]]


def default_out() -> Path:
    return Path("bench/results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _stages(results: dict[str, Any]) -> list[tuple[str, Stage]]:
    def postgres(ctx: Context) -> dict[str, Any]:
        found = stage_sinks.postgres(ctx)
        results["handwritten_projector"] = found.pop("handwritten")
        return found

    def pipeline(ctx: Context) -> dict[str, Any]:
        def reference() -> float:
            rate = results.get("processor", {}).get("defaults", {}).get("rate")
            return float(rate) if rate else 100.0
        found = stage_pipeline.pipeline(ctx, reference)
        results["latency"] = found["latency"]
        return dict(found["sustained"])

    def replay(ctx: Context) -> dict[str, Any]:
        if ctx.sizes.name != "smoke":
            return stage_sinks.replay(ctx)
        # Smoke only (it checks the harness, not the figures): the sink stages' projector runs
        # already started each projector over a pre-filled topic with an empty store.
        return {"events": ctx.sizes.sink_events, "reused": "smoke: the sink stages' runs",
                "postgres": results.get("postgres_sink", {}).get("projector"),
                "search": results.get("search_sink", {}).get("projector")}

    return [("kafka", stage_kafka.raw_kafka), ("processor", stage_kafka.processor_rates),
            ("postgres_sink", postgres), ("search_sink", stage_sinks.search),
            ("replay", replay), ("pipeline", pipeline), ("state", stage_state.state)]


STAGE_NAMES = tuple(name for name, _ in _stages({}))
"""What `run(only=...)` can choose, in run order (`handwritten_projector` comes with
`postgres_sink`, `latency` with `pipeline`)."""


def run(config: BenchConfig, mode: str, out: Path,
        console: Console | None = None, only: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark in `mode` (smoke, quick, default) against the services of `config`;
    write everything under `out`. `only`: these of `STAGE_NAMES` (default: every stage); the
    others are reported as not measured."""
    unknown = sorted(set(only or ()) - set(STAGE_NAMES))
    if unknown:
        raise ValueError(f"unknown stages {unknown}: choose from {', '.join(STAGE_NAMES)}")
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    began, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    stages: dict[str, Any] = {}
    errors: dict[str, str] = {}
    took: dict[str, float] = {}
    with make_progress() as progress:
        ctx = Context(config, SIZES[mode], out, run_id(), StageProgress(progress))
        for name, stage in _stages(stages):
            if only and name not in only:
                continue
            progress.console.print(f"[bold]stage {name}[/bold]")
            ctx.start_stage()
            stage_began = time.monotonic()
            try:
                stages[name] = stage(ctx)
            except Exception as error:
                errors[name] = f"{type(error).__name__}: {error}"
                (out / "logs").mkdir(exist_ok=True)
                (out / "logs" / f"{name}.error.txt").write_text(traceback.format_exc())
                progress.console.print(f"[red]stage {name} failed: {errors[name]}[/red]")
            took[name] = round(time.monotonic() - stage_began, 1)
    for name in report.STAGES:
        stages.setdefault(name, {"error": errors.get(name, "not measured")})
    stages["memory"] = dict(ctx.peaks_mib)
    results: dict[str, Any] = {
        "run": {"mode": mode, "run_id": ctx.run_id, "started_at": started_at,
                "machine": report.machine(),
                "partitions": config.partitions, "batch": BATCH,
                "sizes": vars(SIZES[mode]), "only": only or None,
                "duration_s": round(time.monotonic() - began, 1),
                "stage_seconds": took,
                "search_refresh_interval": config.search.refresh_interval,
                "processor_before_cmd_s": report.PROCESSOR_BEFORE_CMD_S},
        "stages": stages,
        "errors": errors,
    }
    results["targets"] = [t.as_dict() for t in report.targets(stages, config.search.refresh_ms)]
    report.write_json(out / "results.json", results)
    (out / "results.md").write_text(report.markdown(results))
    plots.throughput(stages, out / "throughput.png")
    plots.latency(stages, out / "latency.png")
    return results
