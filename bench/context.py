"""What every stage is handed: services' config, sizes, output folder, progress, memory peaks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench.config import BenchConfig
from bench.infra import Worker
from bench.measure import Measurement, StageTimeout, watch


@dataclass(frozen=True)
class Sizes:
    """How much each stage pushes through; one of `SIZES`."""

    name: str
    kafka_messages: int
    processor_commands: int
    sink_events: int
    replay_events: int
    pipeline_commands: int
    latency_seconds: float
    stage_timeout: float
    state_streams: tuple[int, ...]
    """Streams of the state stage's runs (one namespace and topic each)."""


SIZES = {
    "smoke": Sizes("smoke", 2_000, 1_000, 1_000, 1_000, 500, 2.0, 90, (1_000,)),
    "quick": Sizes("quick", 200_000, 8_000, 5_000, 10_000, 5_000, 6.0, 120, (50_000,)),
    "default": Sizes("default", 1_000_000, 50_000, 30_000, 100_000, 30_000, 30.0, 300,
                     (100_000, 1_000_000)),
}


class StageProgress:
    """A rich progress display: one bar per step of a stage."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def begin(self, description: str, total: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(description, total=total)

    def update(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)


def make_progress() -> Progress:
    return Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn())


@dataclass
class Context:
    config: BenchConfig
    sizes: Sizes
    out: Path
    run_id: str
    progress: StageProgress
    peaks_mib: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _deadline: float = 0.0

    def start_stage(self) -> None:
        self._deadline = self.clock() + self.sizes.stage_timeout

    def check_deadline(self, what: str) -> None:
        if self._deadline and self.clock() > self._deadline:
            raise StageTimeout(f"{what}: over {self.sizes.stage_timeout:.0f}s")

    def log(self, name: str) -> Path:
        return self.out / "logs" / f"{name}.log"

    def watch(self, read: Callable[[], int], target: int, what: str,
              alive: Callable[[], bool] | None = None) -> Measurement:
        remaining = max(10.0, self._deadline - self.clock()) if self._deadline else 300.0
        return watch(read, target, remaining, what, self.progress.update, alive=alive)

    def memory(self, role: str, worker: Worker) -> None:
        """Keep the highest peak resident memory seen for `role` (processor, projector.*)."""
        if worker.peak_mib is not None:
            self.peaks_mib[role] = round(max(self.peaks_mib.get(role, 0.0), worker.peak_mib), 1)
