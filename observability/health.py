"""`Verdict`, the answer of `/livez` and `/readyz`, and the words their bodies use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Words:
    """The `status` of a health body: `yes` when the verdict is ok, else `no`."""

    yes: str
    no: str


LIVENESS = Words("alive", "not alive")
READINESS = Words("ready", "not ready")


@dataclass(frozen=True)
class Verdict:
    """An answer of `/livez` or `/readyz`: `reason` says why not (or what holds, when ok)."""

    ok: bool
    reason: str

    def body(self, words: Words) -> dict[str, str]:
        """`{"status": ..., "reason": ...}`, the JSON every health endpoint answers."""
        return {"status": words.yes if self.ok else words.no, "reason": self.reason}


class HealthCheck(Protocol):
    """What a process answers; read from the HTTP thread, so each answer must be cheap and
    must not wait for the process's loop."""

    def liveness(self) -> Verdict: ...

    def readiness(self) -> Verdict: ...
