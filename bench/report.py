"""results.json, results.md (tables and the targets, met or not) from a run's stage results."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGES = ("kafka", "processor", "postgres_sink", "search_sink", "handwritten_projector",
          "pipeline", "latency", "replay", "memory")
"""Every key of `results.json["stages"]`, in report order."""


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    threshold: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "threshold": self.threshold,
                "higher_is_better": self.higher_is_better, "met": self.met, "note": self.note}


def machine() -> dict[str, Any]:
    model, memory_kib = "unknown", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory_gib": round(memory_kib / 1024 / 1024, 1),
            "cpu_model": model, "python": platform.python_version()}


def _get(stages: dict[str, Any], *path: str) -> Any:
    node: Any = stages
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b > 0:
        return round(a / b, 3)
    return None


def slowest_stage(stages: dict[str, Any]) -> tuple[str, float] | None:
    """The slowest stage alone: the processor (its defaults, as in the pipeline) or either
    projector."""
    candidates = {
        "processor (defaults)": _get(stages, "processor", "defaults", "rate"),
        "postgres projector": _get(stages, "postgres_sink", "projector", "rate"),
        "search projector": _get(stages, "search_sink", "projector", "rate"),
    }
    known = {k: v for k, v in candidates.items() if isinstance(v, int | float) and v > 0}
    if not known:
        return None
    name = min(known, key=lambda k: known[k])
    return name, known[name]


def targets(stages: dict[str, Any]) -> list[Target]:
    k_rate = _get(stages, "kafka", "rate")
    slowest = slowest_stage(stages)
    return [
        Target("processor (100 ms) / K", _ratio(_get(stages, "processor", "100ms", "rate"),
                                                k_rate), 0.5),
        Target("exactly-once / at-least-once at 100 ms", None, 0.9,
               note="n/a: no at-least-once mode"),
        Target("postgres projector / raw upsert", _ratio(
            _get(stages, "postgres_sink", "projector", "rate"),
            _get(stages, "postgres_sink", "baseline", "rate")), 0.8),
        Target("search projector / raw bulk", _ratio(
            _get(stages, "search_sink", "projector", "rate"),
            _get(stages, "search_sink", "baseline", "rate")), 0.8),
        Target("pipeline sustained / slowest stage alone", _ratio(
            _get(stages, "pipeline", "rate"), slowest[1] if slowest else None), 0.8,
            note=f"slowest: {slowest[0]}" if slowest else ""),
        Target("p99 to PostgreSQL at half load (ms)",
               _get(stages, "latency", "postgres", "p99_ms"), 250, higher_is_better=False),
        Target("p99 to search at half load (ms)",
               _get(stages, "latency", "search", "p99_ms"), 1500, higher_is_better=False,
               note="refresh interval 1 s + 500 ms"),
    ]


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _rate_rows(stages: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    k = _get(stages, "kafka", "rate")
    rows: list[tuple[str, Any, Any, Any]] = [("K: raw consume → produce (msg/s)", k, None,
                                              _get(stages, "kafka", "count"))]
    for run in ("defaults", "10ms", "100ms", "1000ms"):
        rate = _get(stages, "processor", run, "rate")
        size = _get(stages, "processor", run, "batch_size")
        each = _get(stages, "processor", run, "mean_commands_per_transaction")
        lasted = _get(stages, "processor", run, "mean_transaction_ms")
        rows.append((f"processor, --batch-ms {_get(stages, 'processor', run, 'batch_ms')} "
                     f"--batch-size {size} (cmd/s; {_fmt(each)} commands, {_fmt(lasted)} ms "
                     "per transaction)", rate, _ratio(rate, k),
                     _get(stages, "processor", run, "count")))
    for sink, label in (("postgres_sink", "PostgreSQL"), ("search_sink", "Elasticsearch")):
        base = _get(stages, sink, "baseline", "rate")
        rows.append((f"{label} raw baseline (rows/s)", base, None, _get(stages, sink, "events")))
        proj = _get(stages, sink, "projector", "rate")
        rows.append((f"{label} Faust projector (events/s)", proj, _ratio(proj, base),
                     _get(stages, sink, "events")))
    hand = _get(stages, "handwritten_projector", "rate")
    faust = _get(stages, "postgres_sink", "projector", "rate")
    rows.append(("hand-written confluent-kafka projector (events/s)", hand, None,
                 _get(stages, "handwritten_projector", "count")))
    rows.append(("Faust postgres projector / hand-written", faust, _ratio(faust, hand), None))
    rows.append(("pipeline sustained, commands → PG rows (cmd/s)", _get(stages, "pipeline", "rate"),
                 None, _get(stages, "pipeline", "count")))
    for name in ("postgres", "search"):
        rows.append((f"replay from the beginning, {name} (events/s)",
                     _get(stages, "replay", name, "rate"), None, _get(stages, "replay", "events")))
    return rows


def markdown(results: dict[str, Any]) -> str:
    stages: dict[str, Any] = results["stages"]
    run = results["run"]
    lines = [f"# Benchmark: {run['mode']} run, {run['started_at']}", "",
             f"Machine: {run['machine']['nproc']} CPUs ({run['machine']['cpu_model']}), "
             f"{run['machine']['memory_gib']} GiB; {run['partitions']} partitions; "
             f"batch {run['batch']}; took {run['duration_s']:.0f} s.", "",
             "| measure | rate | ratio | items |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {_fmt(rate)} | {_fmt(ratio)} | {_fmt(items)} |"
              for name, rate, ratio, items in _rate_rows(stages)]
    latency = stages.get("latency") or {}
    lines += ["", f"Latency at {_fmt(latency.get('rate'))} commands/s (half the sustained rate):",
              "", "| to | p50 ms | p95 ms | p99 ms | max ms | followed | missing |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for sink in ("postgres", "search"):
        got = latency.get(sink) or {}
        lines.append(f"| {sink} | {_fmt(got.get('p50_ms'))} | {_fmt(got.get('p95_ms'))} | "
                     f"{_fmt(got.get('p99_ms'))} | {_fmt(got.get('max_ms'))} | "
                     f"{_fmt(got.get('count'))} | {_fmt(got.get('missing'))} |")
    lines += ["", "Peak resident memory (VmHWM, MiB):", "", "| process | MiB |", "|---|---:|"]
    lines += [f"| {role} | {mib} |" for role, mib in sorted((stages.get("memory") or {}).items())]
    lines += ["", "Targets:", "", "| target | value | threshold | met |", "|---|---:|---:|---|"]
    for target in results["targets"]:
        met = {True: "met", False: "**not met**", None: "n/a"}[target["met"]]
        note = f" ({target['note']})" if target["note"] else ""
        sign = "≥" if target["higher_is_better"] else "≤"
        lines.append(f"| {target['name']}{note} | {_fmt(target['value'])} | "
                     f"{sign} {target['threshold']} | {met} |")
    if results.get("errors"):
        lines += ["", "Errors:", ""]
        lines += [f"- {stage}: {error}" for stage, error in results["errors"].items()]
    return "\n".join(lines) + "\n"
