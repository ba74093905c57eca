"""librdkafka's own log lines go through Python logging, so a JSON-logging process writes only
JSON on stderr even when the broker cannot be reached."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer, Producer
    from cqrs.logs import configure
    from pipeline.processor.config import ProcessorConfig, TopicNames
    from topics import KafkaConnection

    configure("INFO", "json")
    bootstrap = sys.argv[1]
    producer = Producer({**KafkaConnection(bootstrap=bootstrap).client_config(),
                         "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 200})
    names = TopicNames("c", "e", "a", "r", "d")
    config = ProcessorConfig(kafka={"bootstrap.servers": bootstrap}, topics=names)
    consumer = Consumer({**config.reader("restore"), "reconnect.backoff.ms": 100})
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        producer.poll(0.1)
        consumer.poll(0.1)
    consumer.close()
""")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_librdkafka_lines_are_json_when_the_broker_is_unreachable() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, f"127.0.0.1:{closed_port()}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    documents = [json.loads(line) for line in lines]  # a raw `%3|...|FAIL|` line fails here
    assert any(d["logger"] == "confluent_kafka" and "FAIL" in d["event"] for d in documents), lines
