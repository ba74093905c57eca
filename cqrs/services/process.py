"""Starting, watching and stopping service processes by pid, and probing ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cqrs.services.errors import StartFailed

# The services this process started, kept until stopped: a daemon outlives `spawn`, and a
# dropped Popen would be a ResourceWarning (and, once the service exits, a zombie) in a
# long-lived caller such as a test session. `stop_group` reaps them.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, first)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def boot_id() -> str:
    """This boot's random id ("" where the kernel does not expose it)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def command_line(pid: int) -> list[str]:
    """The arguments ``pid`` runs with ([] when it is gone or hidden)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def write_pid_file(pid_file: Path, pid: int) -> None:
    """Record ``pid`` with its identity: start time and boot id (``<pid> <ticks> <boot id>``)."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid} {start_ticks(pid) or 0} {boot_id() or '-'}\n")


def read_pid(pid_file: Path, owns: Callable[[list[str]], bool] | None = None) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still the one recorded, else None.

    A pid is reused after a crash or a reboot, so a live pid proves nothing by itself: the
    process must also have the recorded start time, in the same boot. A file of the older
    format (the pid alone) is trusted only if ``owns`` accepts the process's command line.
    """
    try:
        tokens = pid_file.read_text().split()
        pid = int(tokens[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0 or not pid_alive(pid):
        return None
    if len(tokens) >= 3:
        recorded_boot = tokens[2]
        if recorded_boot != "-" and boot_id() and recorded_boot != boot_id():
            return None
        return pid if tokens[1] == str(start_ticks(pid)) else None
    return pid if owns is not None and owns(command_line(pid)) else None


def spawn(
    command: list[str],
    log_file: Path,
    pid_file: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``command`` detached in its own session (process group), output to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            start_new_session=True,
        )
    write_pid_file(pid_file, proc.pid)
    _spawned[proc.pid] = proc
    return proc.pid


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, log_file: Path, pid: int | None = None
) -> None:
    """Poll ``check`` until true; fail early if ``pid`` died, naming the log to read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not pid_alive(pid):
            raise StartFailed(f"{what} exited during start-up; see {log_file}:\n{tail(log_file)}")
        time.sleep(0.5)
    raise StartFailed(
        f"{what} was not ready after {timeout:.0f}s; see {log_file}:\n{tail(log_file)}"
    )


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_group(
    pid: int, timeout: float = 60.0, sig: signal.Signals = signal.SIGTERM, leader_only: bool = False
) -> bool:
    """Stop the process group led by ``pid``: ``sig`` (to the leader alone if ``leader_only``),
    then SIGKILL to the whole group after ``timeout``.

    Returns True once no process of the group is left.
    """
    for current in (sig, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            if current is sig and leader_only:
                os.kill(pid, current)
            else:
                os.killpg(pid, current)
        deadline = time.monotonic() + (timeout if current is sig else 10.0)
        while time.monotonic() < deadline:
            if not group_alive(pid):
                _reap(pid)
                return True
            time.sleep(0.2)
    gone = not group_alive(pid)
    if gone:
        _reap(pid)
    return gone


def _reap(pid: int) -> None:
    child = _spawned.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)


def group_alive(pgid: int) -> bool:
    """True while any live process belongs to process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def rss_mib(pgid: int) -> float:
    """Resident memory of the whole process group, in MiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total / 2**20
