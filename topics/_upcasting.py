"""Upcasting: bring an event read at an old `schema_version` to the current one, in one place.

An `Upcasters` registry maps `(event_type, from_version)` to a pure function of the event's
`data` returning the data for `from_version + 1`. `upcast` applies the chain until no step is
left. The processor, every projector and replay call the same instance (built once in
`topics.UPCASTERS`), so an event means the same thing wherever it is read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from topics._envelopes import EventEnvelope
from topics.errors import UpcastError

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """A registry of upcasting steps; register everything at start-up, then only read."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int, step: Upcaster) -> None:
        """Add the step `from_version -> from_version + 1`; each step may be registered once."""
        if from_version < 1:
            raise ValueError(f"schema versions start at 1, got {from_version}")
        if (event_type, from_version) in self._steps:
            raise ValueError(f"upcaster {event_type} v{from_version} is already registered")
        self._steps[(event_type, from_version)] = step

    def current_version(self, event_type: str) -> int:
        """The version the chain for `event_type` ends at (1 when it has no steps)."""
        version = 1
        while (event_type, version) in self._steps:
            version += 1
        return version

    def upcast(self, envelope: EventEnvelope, to_version: int | None = None) -> EventEnvelope:
        """`envelope` with its data carried up the chain; the input is never mutated.

        Raises `UpcastError` when a step fails on the event's data (a v1 event missing a field the
        step reads), or when `to_version` is given and the chain does not end exactly there (a gap
        in the chain, or an event newer than this reader knows).
        """
        version = envelope.schema_version
        data = envelope.data
        while (step := self._steps.get((envelope.type, version))) is not None:
            try:
                data = step(copy.deepcopy(data))
            except Exception as error:  # a step is pure: what it raises, it raises again
                raise UpcastError(
                    f"{envelope.type} v{version} -> v{version + 1} failed on this event's data: "
                    f"{type(error).__name__}: {error}"
                ) from error
            version += 1
        if to_version is not None and version != to_version:
            raise UpcastError(
                f"{envelope.type} schema v{envelope.schema_version} upcasts to v{version}, "
                f"this reader needs v{to_version}"
            )
        if version == envelope.schema_version:
            return envelope
        return envelope.model_copy(update={"schema_version": version, "data": data})
