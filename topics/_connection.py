"""`KafkaConnection`: where the brokers are and how to reach them, shared by both sides."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

ClientConfig = dict[str, Any]
"""librdkafka properties (str, int, float, bool) and the Python objects confluent-kafka takes
beside them (`logger`)."""

CLIENT_LOGGER = "confluent_kafka"
"""The Python logger every confluent-kafka client of the project logs through (librdkafka's
own lines, levels mapped from syslog's), so they reach the process's formatter instead of
being written raw to stderr. librdkafka hands them over when the client is polled."""


@dataclass(frozen=True)
class KafkaConnection:
    """Bootstrap servers and transport security (plain settings: SASL and SSL as strings).

    Built once by an entry point's composition root; every Kafka client of the project (the
    confluent-kafka ones through `client_config`, the projectors' aiokafka through Faust's
    credentials) connects with exactly these. The password never appears in a repr.
    """

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None

    def client_config(self) -> ClientConfig:
        """The librdkafka connection properties (`bootstrap.servers`, `security.protocol`, …)
        and `logger`, the `CLIENT_LOGGER` Python logger."""
        config: ClientConfig = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "logger": logging.getLogger(CLIENT_LOGGER),
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config
