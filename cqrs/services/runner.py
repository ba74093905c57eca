"""Bring the native services up, report on them, and take down exactly what was brought up."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cqrs.services.base import Say, Service
from cqrs.services.elasticsearch import Elasticsearch
from cqrs.services.errors import PortTaken, ServiceError
from cqrs.services.kafka import Kafka
from cqrs.services.layout import SERVICE_USER, Layout, recorded_kafka_nodes, recorded_secure
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
_KAFKA_NODE = re.compile(r"^kafka-(?P<node>[1-9])$")


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
    the caller. Without names: the default services, plus Prometheus ``with_metrics``.

    ``kafka`` names every Kafka node of the layout (one, or ``layout.kafka_nodes``, each its own
    service ``kafka-<n>``); ``kafka-<n>`` names one node of a cluster."""

    def __init__(self, layout: Layout, names: list[str] | None = None,
                 with_metrics: bool = False) -> None:
        self.layout = layout
        user = SERVICE_USER if os.geteuid() == 0 else None
        chosen = names or [*DEFAULT_SERVICES, *(METRICS_SERVICES if with_metrics else ())]
        unknown = sorted(name for name in chosen
                         if name not in SERVICE_TYPES and self._node_of(name) is None)
        if unknown:
            raise ServiceError(f"unknown service(s) {unknown}; choose from {self._known()}")
        self.services: list[Service] = []
        for name in chosen:
            taken = {service.name for service in self.services}
            self.services += [s for s in self._services_of(name, user) if s.name not in taken]
        self.user = user

    def _node_of(self, name: str) -> int | None:
        match = _KAFKA_NODE.match(name)
        node = int(match.group("node")) if match else None
        return node if node in self.layout.kafka_node_ids and self.layout.kafka_nodes > 1 else None

    def _known(self) -> list[str]:
        nodes = [self.layout.kafka_node_name(n) for n in self.layout.kafka_node_ids]
        return [*SERVICE_TYPES, *(nodes if self.layout.kafka_nodes > 1 else [])]

    def _services_of(self, name: str, user: str | None) -> list[Service]:
        node = self._node_of(name)
        if node is not None:
            return [Kafka(self.layout, None, node)]
        if name == "kafka":
            return [Kafka(self.layout, None, each) for each in self.layout.kafka_node_ids]
        return [SERVICE_TYPES[name](self.layout, user)]

    def up(self, say: Say) -> None:
        """Start every chosen service that is not running; idempotent."""
        self._prepare_dirs()
        self._record_security(say)
        self._record_kafka_nodes(say)
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
        """Stop the processes ``up`` started (by their recorded pids); True if none is left.

        A cluster's Kafka nodes are stopped together: one by one, the last node standing has
        lost its controller quorum and waits out the whole timeout in its controlled shutdown.
        """
        all_gone = True
        for batch in _stop_batches(list(reversed(self.services))):
            with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                stopped = list(pool.map(lambda service: self._stop(service, say), batch))
            all_gone = all_gone and all(stopped)
        return all_gone

    def _stop(self, service: Service, say: Say) -> bool:
        pid_file = self.layout.pid_file(service.name)
        pid = self._pid(service, say)
        if pid is None:
            say(f"{service.name}: not running")
            pid_file.unlink(missing_ok=True)
            return True
        say(f"{service.name}: stopping pid {pid}")
        gone = stop_group(pid, sig=service.stop_signal, leader_only=service.signal_leader_only)
        if gone:
            pid_file.unlink(missing_ok=True)
            say(f"{service.name}: stopped")
        else:
            say(f"{service.name}: processes of group {pid} are still alive")
        return gone

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

    def _record_security(self, say: Say) -> None:
        """Record whether the services here run secure. A state directory keeps its mode:
        its data was made for it (Kafka's users are written when its storage is formatted)."""
        layout = self.layout
        recorded = recorded_secure(layout.state_dir)
        if recorded == layout.secure and layout.security_record.exists():
            return
        made = [name for name in ("kafka", "kafka-1", "elasticsearch", "postgres")
                if (layout.service_dir(name) / "data").exists()]
        if made and recorded != layout.secure:
            was, wanted = ("secure", "plaintext") if recorded else ("plaintext", "secure")
            raise ServiceError(
                f"the services in {layout.state_dir} were made {was} ({', '.join(made)}); run "
                f"the {wanted} ones in another state directory: CQRS_SERVICES_STATE_DIR=<dir> "
                f"cqrs services up{' --secure' if layout.secure else ''} (with other ports if "
                "both run at once: CQRS_SERVICES_KAFKA_PORT, ..._ELASTICSEARCH_PORT, "
                "..._POSTGRES_PORT)")
        if layout.secure:
            say(f"secure services (authentication and TLS) in {layout.state_dir}")
        layout.security_record.write_text("secure\n" if layout.secure else "plaintext\n")

    def _record_kafka_nodes(self, say: Say) -> None:
        """Record how many Kafka nodes run here, once the other count's nodes are stopped."""
        if not any(isinstance(service, Kafka) for service in self.services):
            return
        recorded = recorded_kafka_nodes(self.layout.state_dir) or 1
        wanted = self.layout.kafka_nodes
        if recorded == wanted:
            return
        before = replace(self.layout, kafka_nodes=recorded)
        running = [service.name for service in Runner(before, ["kafka"]).services
                   if read_pid(before.pid_file(service.name), service.owns) is not None]
        if running:
            raise ServiceError(
                f"Kafka runs here as {recorded} node(s) ({', '.join(running)}); stop it first "
                f"with `cqrs services down kafka`, then start {wanted} node(s)")
        say(f"kafka: {wanted} node(s) in {self.layout.state_dir}")
        self.layout.kafka_nodes_record.write_text(f"{wanted}\n")

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
                    f"with CQRS_SERVICES_{name.split('-')[0].upper()}_PORT."
                )


def _stop_batches(services: list[Service]) -> list[list[Service]]:
    """`services` in order, with consecutive Kafka nodes in one batch (stopped together)."""
    batches: list[list[Service]] = []
    for service in services:
        if batches and isinstance(service, Kafka) and isinstance(batches[-1][0], Kafka):
            batches[-1].append(service)
        else:
            batches.append([service])
    return batches


def _ensure_user(user: str, home: Path) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--home-dir", str(home),
             "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            check=True,
        )
