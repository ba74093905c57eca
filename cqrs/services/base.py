"""What the runner needs to know of one service: how to prepare, launch, probe and stop it."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cqrs.services.layout import Layout

Say = Callable[[str], None]


@dataclass(frozen=True)
class Launch:
    """How to run a prepared service in the foreground."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None
    ports: tuple[int, ...] = field(default_factory=tuple)


class Service:
    """One native service. Subclasses fill in the steps; the runner sequences them."""

    name: str = ""
    start_timeout: float = 120.0
    stop_signal: signal.Signals = signal.SIGTERM
    signal_leader_only: bool = False

    def __init__(self, layout: Layout, user: str | None) -> None:
        self.layout = layout
        self.user = user
        self.home = layout.service_dir(self.name)

    def prepare(self, say: Say) -> Launch:
        """Fetch (once, cached), configure and initialise storage (once); idempotent."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once clients can use the service."""
        raise NotImplementedError

    def after_start(self, say: Say) -> None:
        """Work that needs the running service (creating a database, say); idempotent."""

    def describe(self) -> str:
        """Where clients reach it."""
        raise NotImplementedError

    def owns(self, command_line: list[str]) -> bool:
        """True if a process running ``command_line`` is this service of this state directory
        (every service names a path under its home: a config file or the data directory).
        Only pid files of the older, pid-only format are checked this way."""
        home = str(self.home)
        return any(arg == home or f"{home}/" in arg for arg in command_line)
