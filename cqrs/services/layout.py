"""Versions, ports and directories of the native services, in one place for runner and tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cqrs import metrics_ports

# The artifacts, as Maven Central names them. docker-compose.yml uses the same versions
# (tests/unit/test_compose.py checks that the two agree).
KAFKA_VERSION = "4.1.1"
KAFKA_ARTIFACT = f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"
LOG4J_VERSION = "2.24.3"
# Kafka's jars bring slf4j-api 1.7, so the binding is log4j's for slf4j 1.x (the slf4j2 one
# is not found by slf4j 1.7, which then drops every log line).
LOG4J_BINDING = f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}"
ELASTICSEARCH_VERSION = "9.2.0"
ELASTICSEARCH_ARTIFACT = (
    f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ELASTICSEARCH_VERSION}:zip"
)
POSTGRES_MAJOR = 15

KAFKA_MIN_JAVA = 17
ELASTICSEARCH_MIN_JAVA = 21
SERVICE_USER = "cqrs"

# Prometheus (`cqrs services up --with-metrics`): Debian's package, and what it scrapes. The
# processes' ports are the settings' (`Settings.metrics_ports`, defaults in `cqrs.metrics_ports`),
# handed to `Layout.from_env` by its caller, so a job's port moves with the process's (the gateway
# takes its port as an option only, so Prometheus has a variable of its own for it).
REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_RULES = (
    REPO_ROOT / "deploy/prometheus/rules.yml",
    REPO_ROOT / "deploy/prometheus/alerts.yml",
)
PROCESS_JOBS: dict[str, str] = {
    # process (a key of `Settings.metrics_ports`): its job
    "processor": "cqrs-processor",
    "postgres": "cqrs-projector-postgres",
    "search": "cqrs-projector-search",
}
DEFAULT_METRICS_PORTS: dict[str, int] = {
    "processor": metrics_ports.PROCESSOR,
    "postgres": metrics_ports.PROJECTOR_POSTGRES,
    "search": metrics_ports.PROJECTOR_SEARCH,
}
GATEWAY_JOB = "cqrs-gateway"
GATEWAY_PORT_VARIABLE = "CQRS_SERVICES_GATEWAY_PORT"
GATEWAY_PORT = 8000

# A Kafka cluster (`cqrs services up --kafka-nodes 3`): node n listens on the single node's ports
# plus 2(n - 1), so 9092/9093, 9094/9095, 9096/9097 by default.
KAFKA_PORT_STRIDE = 2
MAX_KAFKA_NODES = 9
CLUSTER_NODE_HEAP_MB = 384
"""A cluster node's heap unless set (2 cores run three brokers, the pipeline and its tests)."""
CLUSTER_TRANSACTION_TIMEOUT_MS = 30_000
"""The processor's transaction timeout that `services env` gives a cluster: above a failover
(docs/operations.md, "Running it on a cluster")."""
FULL_REPLICATION = 3
"""Replicas per partition once there are enough nodes: one node may be lost (min ISR 2) while
writes go on, and a second copy still remains."""
SECURITY_RECORD = "security"
"""A file in the state directory: `secure` when the last `up` there ran the services with
authentication and TLS (`cqrs services up --secure`), so every later command follows it."""
SECURE_VARIABLES = ("CQRS_KAFKA_SECURITY_PROTOCOL", "CQRS_KAFKA_SASL_MECHANISM",
                    "CQRS_KAFKA_SSL_CA_LOCATION", "CQRS_ES_CA_CERTS", "CQRS_CREDENTIALS_DIR")
"""What `cqrs services env` sets for secure services (and unsets for the others)."""
ROLE_VARIABLES = ("CQRS_KAFKA_SASL_USERNAME", "CQRS_KAFKA_SASL_PASSWORD", "CQRS_PG_DSN",
                  "CQRS_ES_API_KEY", "CQRS_ES_USERNAME", "CQRS_ES_PASSWORD",
                  "CQRS_CREDENTIALS_FILE")
"""Settings a role's credentials file gives: `cqrs services env` unsets them for secure
services, since a variable set in the environment would win over every role's file."""
KAFKA_NODES_RECORD = "kafka-nodes"
"""A file in the state directory: how many Kafka nodes the last `up` ran there, so `status`,
`down` and `env` cover the same nodes without being told."""


def _default_targets(
    env: dict[str, str], host: str, ports: Mapping[str, int] | None = None
) -> dict[str, tuple[str, ...]]:
    ports = DEFAULT_METRICS_PORTS if ports is None else ports
    targets: dict[str, tuple[str, ...]] = {
        job: (f"{host}:{ports[process]}",) for process, job in PROCESS_JOBS.items()
    }
    targets[GATEWAY_JOB] = (f"{host}:{env.get(GATEWAY_PORT_VARIABLE, GATEWAY_PORT)}",)
    return targets


def metrics_jobs() -> dict[str, int]:
    """Every job Prometheus scrapes and its default port (what the compose files must match)."""
    jobs = {job: DEFAULT_METRICS_PORTS[process] for process, job in PROCESS_JOBS.items()}
    return {**jobs, GATEWAY_JOB: GATEWAY_PORT}


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Layout:
    """Where the services live and listen.

    The cache (downloads and unpacked distributions) is outside the clone so that a second
    ``up`` fetches nothing; the state (data, logs, pids) is per machine. As root both sit under
    /var so that the unprivileged service user can read them; otherwise under the user's home.
    Every value can be overridden by ``CQRS_SERVICES_*`` variables.
    """

    state_dir: Path
    cache_dir: Path
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    elasticsearch_port: int = 9200
    postgres_port: int = 5432
    host: str = "127.0.0.1"
    heap_mb: int = 512
    prometheus_port: int = 9090
    scrape_interval_s: float = 5.0
    # job -> "host:port" targets, written as file_sd files; extra files beside them are kept.
    metrics_targets: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: _default_targets({}, "127.0.0.1"), hash=False)
    prometheus_rules: tuple[Path, ...] = PROMETHEUS_RULES
    kafka_nodes: int = 1
    kafka_heap_mb: int | None = None
    """Each Kafka node's heap; None: `heap_mb` for one node, `CLUSTER_NODE_HEAP_MB` for more."""
    secure: bool = False
    """Authentication and TLS everywhere (`cqrs services up --secure`; docs/security.md)."""

    def __post_init__(self) -> None:
        if not 1 <= self.kafka_nodes <= MAX_KAFKA_NODES:
            raise ValueError(f"kafka_nodes must be 1 to {MAX_KAFKA_NODES}, not {self.kafka_nodes}")
        ports = [port for node in self.kafka_node_ids for port in self.kafka_ports(node)]
        if len(set(ports)) != len(ports):
            raise ValueError(
                f"the Kafka nodes' ports overlap ({ports}): node n listens on the broker and "
                f"controller ports plus {KAFKA_PORT_STRIDE}(n - 1); set "
                "CQRS_SERVICES_KAFKA_CONTROLLER_PORT outside the brokers' range")

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, metrics_ports: Mapping[str, int] | None = None
    ) -> Layout:
        """The `CQRS_SERVICES_*` variables of `env` (default: the environment); Prometheus's
        targets at `metrics_ports` (`Settings.metrics_ports`, default: the default ports)."""
        env = dict(os.environ if env is None else env)
        home = Path.home()
        default_state = Path("/var/lib/cqrs") if _is_root() else home / ".local/state/cqrs"
        default_cache = Path("/var/cache/cqrs") if _is_root() else home / ".cache/cqrs"
        state_dir = Path(env.get("CQRS_SERVICES_STATE_DIR", default_state))
        kafka_heap = env.get("CQRS_SERVICES_KAFKA_HEAP_MB") or env.get("CQRS_SERVICES_HEAP_MB")
        return cls(
            state_dir=state_dir,
            cache_dir=Path(env.get("CQRS_SERVICES_CACHE_DIR", default_cache)),
            kafka_port=int(env.get("CQRS_SERVICES_KAFKA_PORT", 9092)),
            kafka_controller_port=int(env.get("CQRS_SERVICES_KAFKA_CONTROLLER_PORT", 9093)),
            elasticsearch_port=int(env.get("CQRS_SERVICES_ELASTICSEARCH_PORT", 9200)),
            postgres_port=int(env.get("CQRS_SERVICES_POSTGRES_PORT", 5432)),
            heap_mb=int(env.get("CQRS_SERVICES_HEAP_MB", 512)),
            prometheus_port=int(env.get("CQRS_SERVICES_PROMETHEUS_PORT", 9090)),
            scrape_interval_s=float(env.get("CQRS_SERVICES_PROMETHEUS_SCRAPE_INTERVAL", 5)),
            metrics_targets=_default_targets(env, "127.0.0.1", metrics_ports),
            prometheus_rules=tuple(
                Path(path) for path in env["CQRS_SERVICES_PROMETHEUS_RULES"].split(os.pathsep)
            ) if env.get("CQRS_SERVICES_PROMETHEUS_RULES") else PROMETHEUS_RULES,
            kafka_nodes=int(env.get("CQRS_SERVICES_KAFKA_NODES")
                            or recorded_kafka_nodes(state_dir) or 1),
            kafka_heap_mb=int(kafka_heap) if kafka_heap else None,
            secure=_flag(env["CQRS_SERVICES_SECURE"]) if env.get("CQRS_SERVICES_SECURE")
            else recorded_secure(state_dir),
        )

    def service_dir(self, name: str) -> Path:
        return self.state_dir / name

    def log_file(self, name: str) -> Path:
        return self.state_dir / name / "logs" / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.state_dir / "pids" / f"{name}.pid"

    @property
    def kafka_node_ids(self) -> range:
        return range(1, self.kafka_nodes + 1)

    def kafka_node_name(self, node: int) -> str:
        """`kafka` for the single node (as before clusters), `kafka-<n>` for a cluster's nodes:
        the service's name, directory, pid and log file."""
        return "kafka" if self.kafka_nodes == 1 else f"kafka-{node}"

    def kafka_ports(self, node: int) -> tuple[int, int]:
        """Node `node`'s (broker, controller) ports."""
        offset = KAFKA_PORT_STRIDE * (node - 1)
        return self.kafka_port + offset, self.kafka_controller_port + offset

    def kafka_address(self, node: int) -> str:
        return f"{self.host}:{self.kafka_ports(node)[0]}"

    @property
    def kafka_bootstrap(self) -> str:
        """Every node's broker address, comma-separated (clients need any one of them)."""
        return ",".join(self.kafka_address(node) for node in self.kafka_node_ids)

    @property
    def kafka_node_heap_mb(self) -> int:
        if self.kafka_heap_mb is not None:
            return self.kafka_heap_mb
        return self.heap_mb if self.kafka_nodes == 1 else CLUSTER_NODE_HEAP_MB

    @property
    def replication_factor(self) -> int:
        """What the catalogue's topics and the brokers' internal topics get on these nodes."""
        return min(self.kafka_nodes, FULL_REPLICATION)

    @property
    def min_insync_replicas(self) -> int:
        """With acks=all, 2 of 3 replicas confirm a write, so one node may be lost."""
        return 2 if self.replication_factor >= FULL_REPLICATION else 1

    @property
    def kafka_nodes_record(self) -> Path:
        return self.state_dir / KAFKA_NODES_RECORD

    @property
    def security_record(self) -> Path:
        return self.state_dir / SECURITY_RECORD

    @property
    def tls_dir(self) -> Path:
        """The local CA and the services' certificates (`cqrs.services.tls.LocalCA`)."""
        return self.state_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the secure services with."""
        return self.tls_dir / "ca.pem"

    @property
    def credentials_dir(self) -> Path:
        """Each role's credentials file (`cqrs.services.credentials.RoleFiles`)."""
        return self.state_dir / "credentials"

    @property
    def elasticsearch_url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host}:{self.elasticsearch_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def postgres_password_file(self) -> Path:
        """The generated password of the role ``cqrs`` (mode 0600), written by ``up``."""
        return self.state_dir / "postgres" / "cqrs.password"

    @property
    def postgres_dsn(self) -> str:
        """The project's DSN, with the password ``up`` generated (none before the first ``up``,
        or for a caller who may not read the file: the server then refuses the connection)."""
        try:
            password = self.postgres_password_file.read_text().strip()
        except OSError:
            password = ""
        credentials = f"cqrs:{quote(password, safe='')}" if password else "cqrs"
        return f"postgresql://{credentials}@{self.host}:{self.postgres_port}/cqrs"

    def client_env(self) -> dict[str, str | None]:
        """The variables that point the project (and its tests) at these services (None: unset
        it). Secure services: where the CA and the roles' credentials files are, never a
        secret (each entry point reads its role's file)."""
        common: dict[str, str | None] = {
            "CQRS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CQRS_REPLICATION_FACTOR": str(self.replication_factor),
            "CQRS_ES_URL": self.elasticsearch_url,
        }
        if self.kafka_nodes > 1:
            common["CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS"] = str(CLUSTER_TRANSACTION_TIMEOUT_MS)
        if not self.secure:
            unset = [*SECURE_VARIABLES, *(key for key in ROLE_VARIABLES if key != "CQRS_PG_DSN")]
            return {**common, "CQRS_PG_DSN": self.postgres_dsn, **dict.fromkeys(unset)}
        return {
            **common,
            "CQRS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CQRS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CQRS_KAFKA_SSL_CA_LOCATION": str(self.ca_file),
            "CQRS_ES_CA_CERTS": str(self.ca_file),
            "CQRS_CREDENTIALS_DIR": str(self.credentials_dir),
            **dict.fromkeys(ROLE_VARIABLES),
        }


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def recorded_secure(state_dir: Path) -> bool:
    """True when the last `up` in `state_dir` ran the services secure."""
    try:
        return (state_dir / SECURITY_RECORD).read_text().strip() == "secure"
    except OSError:
        return False


def recorded_kafka_nodes(state_dir: Path) -> int | None:
    """The node count the last `up` recorded in `state_dir` (None: none, or not a count: a
    damaged record must not stop every entry point, which all read the layout)."""
    try:
        nodes = int((state_dir / KAFKA_NODES_RECORD).read_text().strip())
    except (OSError, ValueError):
        return None
    return nodes if 1 <= nodes <= MAX_KAFKA_NODES else None
