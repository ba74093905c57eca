"""Bring the native services up, report on them, and take down exactly what was brought up."""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cqrs.services.base import Say, Service
from cqrs.services.elasticsearch import Elasticsearch
from cqrs.services.errors import PortTaken, ServiceError
from cqrs.services.kafka import Kafka
from cqrs.services.layout import SERVICE_USER, Layout
from cqrs.services.postgres import Postgres
from cqrs.services.process import (
    group_alive,
    port_open,
    read_pid,
    rss_mib,
    spawn,
    stop_group,
    wait_until,
)
from cqrs.services.prometheus import Prometheus

__all__ = ["Runner", "ServiceError", "Status"]

SERVICE_TYPES: dict[str, type[Service]] = {
    "kafka": Kafka,
    "elasticsearch": Elasticsearch,
    "postgres": Postgres,
    "prometheus": Prometheus,
}
# What `up` runs unless told otherwise; `--with-metrics` adds these.
DEFAULT_SERVICES = ("kafka", "elasticsearch", "postgres")
METRICS_SERVICES = ("prometheus",)


@dataclass(frozen=True)
class Status:
    name: str
    pid: int | None
    ready: bool
    rss_mib: float
    endpoint: str
    log_file: Path


class Runner:
    """Sequences the services. Elasticsearch and PostgreSQL refuse to run as root, so as root
    they (and Prometheus) run as the system user ``cqrs`` (created on first use); Kafka runs as
    the caller. Without names: the default services, plus Prometheus ``with_metrics``."""

    def __init__(self, layout: Layout, names: list[str] | None = None,
                 with_metrics: bool = False) -> None:
        self.layout = layout
        user = SERVICE_USER if os.geteuid() == 0 else None
        chosen = names or [*DEFAULT_SERVICES, *(METRICS_SERVICES if with_metrics else ())]
        unknown = sorted(set(chosen) - set(SERVICE_TYPES))
        if unknown:
            raise ServiceError(f"unknown service(s) {unknown}; choose from {list(SERVICE_TYPES)}")
        self.services = [
            SERVICE_TYPES[name](layout, None if name == "kafka" else user) for name in chosen
        ]
        self.user = user

    def up(self, say: Say) -> None:
        """Start every chosen service that is not running; idempotent."""
        self._prepare_dirs()
        pending: list[tuple[Service, int]] = []
        for service in self.services:
            pid = self._pid(service, say)
            if pid is not None:
                say(f"{service.name}: already running (pid {pid}), {service.describe()}")
                if not service.ready():
                    wait_until(service.ready, service.start_timeout, service.name,
                               self.layout.log_file(service.name), pid)
                continue
            say(f"{service.name}: preparing")
            launch = service.prepare(say)
            self._check_ports(service.name, launch.ports)
            log_file = self.layout.log_file(service.name)
            log_file.parent.mkdir(parents=True, exist_ok=True)
            if launch.user:
                subprocess.run(["chown", "-R", f"{launch.user}:{launch.user}",
                                str(service.home)], check=True)
            pid = spawn(launch.command, log_file, self.layout.pid_file(service.name),
                        env=launch.env, cwd=launch.cwd, user=launch.user)
            say(f"{service.name}: started (pid {pid}), log {log_file}")
            pending.append((service, pid))
        for service, pid in pending:
            wait_until(service.ready, service.start_timeout, service.name,
                       self.layout.log_file(service.name), pid)
            say(f"{service.name}: ready, {service.describe()}")
        for service in self.services:
            service.after_start(say)

    def down(self, say: Say) -> bool:
        """Stop the processes ``up`` started (by their recorded pids); True if none is left."""
        all_gone = True
        for service in reversed(self.services):
            pid_file = self.layout.pid_file(service.name)
            pid = self._pid(service, say)
            if pid is None:
                say(f"{service.name}: not running")
                pid_file.unlink(missing_ok=True)
                continue
            say(f"{service.name}: stopping pid {pid}")
            gone = stop_group(pid, sig=service.stop_signal, leader_only=service.signal_leader_only)
            if gone:
                pid_file.unlink(missing_ok=True)
                say(f"{service.name}: stopped")
            else:
                say(f"{service.name}: processes of group {pid} are still alive")
            all_gone = all_gone and gone
        return all_gone

    def running_metrics_services(self) -> list[str]:
        """The metrics services whose recorded process is alive (``down`` stops them too)."""
        return [name for name in METRICS_SERVICES
                if read_pid(self.layout.pid_file(name),
                            SERVICE_TYPES[name](self.layout, self.user).owns) is not None]

    def status(self) -> list[Status]:
        result = []
        for service in self.services:
            pid = read_pid(self.layout.pid_file(service.name), service.owns)
            alive = pid is not None and group_alive(pid)
            result.append(
                Status(
                    name=service.name,
                    pid=pid,
                    ready=alive and service.ready(),
                    rss_mib=rss_mib(pid) if pid is not None else 0.0,
                    endpoint=service.describe(),
                    log_file=self.layout.log_file(service.name),
                )
            )
        return result

    def _pid(self, service: Service, say: Say) -> int | None:
        """The recorded pid if it is still this service's process; a stale file is removed."""
        pid_file = self.layout.pid_file(service.name)
        pid = read_pid(pid_file, service.owns)
        if pid is None and pid_file.exists():
            say(f"{service.name}: removing stale pid file {pid_file} "
                f"(its process is gone or the pid now belongs to another process)")
            pid_file.unlink(missing_ok=True)
        return pid

    def _prepare_dirs(self) -> None:
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        self.layout.cache_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            _ensure_user(self.user, self.layout.state_dir)
            # The service user must traverse the state and cache directories.
            for path in (self.layout.state_dir, self.layout.cache_dir):
                path.chmod(0o755)

    def _check_ports(self, name: str, ports: tuple[int, ...]) -> None:
        for port in ports:
            if port_open(self.layout.host, port):
                raise PortTaken(
                    f"{name}: port {port} on {self.layout.host} is taken by another process "
                    f"(`ss -ltnp 'sport = :{port}'` shows which). Stop it, or choose another port "
                    f"with CQRS_SERVICES_{name.upper()}_PORT."
                )


def _ensure_user(user: str, home: Path) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--home-dir", str(home),
             "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            check=True,
        )
