"""`settle_heap`: what is alive is frozen out of the collector's passes, young passes are rarer
(run in a child process: the collector's settings are process-wide)."""

from __future__ import annotations

import subprocess
import sys

from cqrs.collector import YOUNG_THRESHOLD

CHILD = """
import gc
from cqrs.collector import settle_heap
before = gc.get_threshold()
kept = [object() for _ in range(10)]
settle_heap()
print(gc.get_freeze_count() > 0, gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:])
"""


def test_settling_freezes_the_heap_and_raises_the_young_threshold() -> None:
    found = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           check=True).stdout.split()
    assert found == ["True", str(YOUNG_THRESHOLD), "True"]
