"""The bases of the messages the two sides exchange: `Command` (imperative) and `Event` (past)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Command(BaseModel):
    """An imperative request (frozen; unknown fields are a validation error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(BaseModel):
    """A past-tense fact (frozen); `schema_version` is the version this model reads and writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: ClassVar[int] = 1
    erases_stream: ClassVar[bool] = False
    """The stream's last event, whose earlier events are erased (`UserForgotten`): a reader
    applies it even where earlier events of the stream are held back (docs/erasure.md)."""
