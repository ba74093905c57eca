"""PNG plots with matplotlib's Agg backend: throughput over time per stage, latency distribution."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def series_of(stages: dict[str, Any], path: str = "") -> Iterator[tuple[str, list[list[float]]]]:
    """Every `series` in the results, labelled by where it was found (`postgres_sink.projector`)."""
    for key, value in stages.items():
        if not isinstance(value, dict):
            continue
        label = f"{path}.{key}" if path else key
        if isinstance(value.get("series"), list) and len(value["series"]) > 1:
            yield label, value["series"]
        yield from series_of(value, label)


def rates(series: list[list[float]]) -> tuple[list[float], list[float]]:
    """Items per second over windows of a twentieth of the series' span (at least 50 ms)."""
    window = max(0.05, (series[-1][0] - series[0][0]) / 20)
    times, values = [], []
    start_t, start_n = series[0]
    for t, n in series[1:]:
        if t - start_t >= window:
            times.append(t)
            values.append((n - start_n) / (t - start_t))
            start_t, start_n = t, n
    return times, values


def throughput(stages: dict[str, Any], path: Path) -> None:
    found = list(series_of(stages))
    rows = max(1, (len(found) + 1) // 2)
    figure, axes = plt.subplots(rows, 2, figsize=(12, 2.4 * rows), squeeze=False)
    for axis in axes.flat[len(found):]:
        axis.set_visible(False)
    for axis, (label, series) in zip(axes.flat, found, strict=False):
        times, values = rates(series)
        axis.plot(times, values, marker=".", linewidth=1)
        axis.set_title(label, fontsize=9)
        axis.set_ylabel("items/s", fontsize=8)
        axis.set_xlabel("s", fontsize=8)
        axis.set_ylim(bottom=0)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    figure.suptitle("Throughput over time per stage (s since the stage's measurement began)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def latency(stages: dict[str, Any], path: Path) -> None:
    """Cumulative distribution of command → PostgreSQL row and → searchable, at half load
    (solid) and at light load (dashed)."""
    figure, axis = plt.subplots(figsize=(8, 4))
    got = stages.get("latency") or {}
    for run, style in (("half_load", "-"), ("light", "--")):
        at = got.get(run) or {}
        for sink in ("postgres", "search"):
            samples = sorted((at.get(sink) or {}).get("samples_ms") or [])
            if samples:
                fractions = [(i + 1) / len(samples) for i in range(len(samples))]
                axis.plot(samples, fractions, style,
                          label=f"to {sink}, {at.get('rate', '?')} cmd/s (n={len(samples)})")
    axis.set_xscale("log")
    axis.set_xlabel("latency, command produced → visible (ms, log scale)")
    axis.set_ylabel("fraction of commands")
    axis.set_title("End-to-end latency: half the sustained rate (solid), light load (dashed)")
    axis.grid(alpha=0.3, which="both")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
