"""Where a rebuild starts and stops: `P:O,...` offset lists and ISO 8601 timestamps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

_OFFSETS = re.compile(r"^\s*\d+\s*:\s*\d+\s*(,\s*\d+\s*:\s*\d+\s*)*$")


class PositionError(ValueError):
    """An offset list or timestamp that cannot be read."""


@dataclass(frozen=True)
class Bounds:
    """`start`: partition → first offset to read (absent: the beginning). `until_offsets`:
    partition → last offset to include; `until_time`: include events stamped at or before it.
    With neither `until_*`, the build follows the live end and is swapped in."""

    start: dict[int, int] = field(default_factory=dict)
    until_offsets: dict[int, int] | None = None
    until_time: datetime | None = None

    @property
    def point_in_time(self) -> bool:
        return self.until_offsets is not None or self.until_time is not None


def parse_offsets(text: str) -> dict[int, int]:
    """`"0:120,2:7"` → `{0: 120, 2: 7}`; a partition named twice is an error."""
    if not _OFFSETS.match(text):
        raise PositionError(f"expected PARTITION:OFFSET[,PARTITION:OFFSET...], got {text!r}")
    found: dict[int, int] = {}
    for part in text.split(","):
        partition, offset = (int(value) for value in part.split(":"))
        if partition in found:
            raise PositionError(f"partition {partition} named twice in {text!r}")
        found[partition] = offset
    return found


def parse_until(text: str) -> dict[int, int] | datetime:
    """An offset list (`P:O,...`, each offset included) or an ISO 8601 time (UTC if naive)."""
    if _OFFSETS.match(text):
        return parse_offsets(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PositionError(
            f"--until takes PARTITION:OFFSET[,...] or an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
