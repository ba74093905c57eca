"""Stalled zombies: a processor frozen inside a transaction (offsets sent, not committed) while
the other takes its partition over, then woken. Nothing is decided twice or on stale state.

Two processors (`tests.support.stalling_processor`, the real command line with a producer that
stops its own process between `send_offsets` and `commit` when armed, and keeps each
transaction's records in the client until its commit) share 3 partitions under a steady load of
UpdateUser chains and resent commands. The one holding two partitions is stopped inside a
transaction of one of them, then woken:

- `past-timeouts`: once the other has committed on that partition, which it can only do after
  the coordinator aborted the stalled transaction (its offset fetch waits for the pending
  offsets): longer than the session and the transaction timeout. The zombie is fenced. This case
  proves fencing, not the wait for stable offsets: the stalled transaction is aborted, so a
  restore that read the partition before the abort would miss nothing of it either.
- `between-timeouts`: after 8 s, longer than the session timeout (6 s), shorter than the
  transaction timeout (10 s). The zombie's commit lands, after the other took the partition over,
  and the other decides on that partition before the zombie rejoins and takes it back (asserted:
  otherwise nothing was decided on a possibly stale state, and the case proves nothing; the
  stall is armed once more, then the test fails saying so). This is the case the wait for stable
  offsets (and the restore to the high watermark) is for.

Afterwards, with raw read_committed consumers: every command answered once per send (a resend
answered `duplicate`, never accepted twice), every stream's versions gapless from 1, no event key
written twice, each accepted command's events exactly those its result names.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.support.processor import ROOT, command, owned, read_all, stream_of, topics_for
from tests.support.stalling_processor import HOLD, STALL_FILE
from topics import Catalogue, decode_event, decode_result, partition_for

PARTITIONS = 3
USERS = 24
RATE = 120
"""Commands per second of the load (UpdateUser chains, one in ten a resend)."""
SESSION_S, TRANSACTION_S = 6, 10
"""`ProcessorConfig`'s session and transaction timeouts."""
BETWEEN_S = 8.0


@pytest.fixture
def catalogue(kafka_config: dict[str, str], topic_prefix: str) -> Iterator[Catalogue]:
    with topics_for(kafka_config, topic_prefix, PARTITIONS) as created:
        yield created


class StallableProcess:
    """A `tests.support.stalling_processor` subprocess, its JSON log, its stall arming file."""

    def __init__(self, kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path,
                 instance: str) -> None:
        self.instance = instance
        self.log_path = tmp_path / f"processor-{instance}.log"
        self.arm_path = tmp_path / f"stall-{instance}.json"
        env = {
            **os.environ,
            "CQRS_KAFKA_BOOTSTRAP": kafka_config["bootstrap.servers"],
            "CQRS_TOPIC_PREFIX": catalogue.prefix,
            "CQRS_PARTITIONS": str(catalogue.partitions),
            STALL_FILE: str(self.arm_path),
            HOLD: "1",
        }
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "tests.support.stalling_processor", "processor",
                 "--instance-id", instance, "--metrics-port", "0"],
                cwd=ROOT, env=env, stdout=log, stderr=log,
            )

    def log(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def owned(self) -> set[int]:
        """The partitions its log says it owns now."""
        return owned(self.log()) or set()

    def committed_on(self, partition: int, after: datetime) -> datetime | None:
        """When its first batch holding an accepted command and `partition` committed after
        `after`, under an assignment it got after `after` (None: not yet)."""
        assigned = False
        for line in self.log():
            if _ts(line) <= after:
                continue
            assigned = assigned or line["event"] == "assigned"
            if (assigned and line["event"] == "batch committed"
                    and partition in line["partitions"] and line["counts"].get("accepted")):
                return _ts(line)
        return None

    def assigned_again(self, partition: int, after: datetime) -> datetime | None:
        """When it was first assigned `partition` after `after` (None: not yet)."""
        return next((_ts(line) for line in self.log() if _ts(line) > after
                     and line["event"] == "assigned" and partition in line["partitions"]), None)

    def arm(self, partition: int) -> None:
        self.arm_path.write_text(json.dumps({"partition": partition}))

    def stopped(self) -> bool:
        stat = Path(f"/proc/{self.popen.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "T"

    def resume(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)


def _ts(line: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(line["ts"])


class Load:
    """CreateUser for each user, then UpdateUser round robin at `RATE`, one in ten a resend of an
    earlier command (the same id: a duplicate), until stopped; `sent` lists every command."""

    def __init__(self, kafka_config: dict[str, str], catalogue: Catalogue) -> None:
        self._producer = Producer({**kafka_config, "enable.idempotence": True, "linger.ms": 5})
        self._topic = catalogue.commands.name
        self.sent: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        for user in range(USERS):
            self._send(command("CreateUser", f"u{user}",
                               {"email": f"u{user}@example.com", "name": f"U{user}"}))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        assert self._producer.flush(30) == 0

    def _send(self, document: dict[str, Any]) -> None:
        stream_id = stream_of(document)
        self._producer.produce(self._topic, json.dumps(document).encode(), stream_id.encode(),
                               partition=partition_for(stream_id, PARTITIONS))
        self._producer.poll(0)
        self.sent.append(document)

    def _run(self) -> None:
        for tick in itertools.count():
            if self._stop.wait(1 / RATE):
                return
            if tick % 10 == 9:
                self._send(self.sent[len(self.sent) // 2 + tick % (len(self.sent) // 2)])
            else:
                user = tick % USERS
                self._send(command("UpdateUser", f"u{user}", {"name": f"N{tick}"}))


def wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


@dataclass
class Figures:
    stall_s: float
    """From the stall to SIGCONT."""
    pause_s: float
    """From the stall to the first commit of an accepted command on the partition by an owner
    that got it after the stall (the heir, or the zombie again after it rejoined)."""
    waited_s: float
    """The heir's wait for stable offsets at the assignment that gave it the partition."""
    zombie_committed: bool
    """Whether the zombie's stalled transaction committed when it woke."""
    heir_decided_first: bool
    """Whether the heir committed an accepted command on the partition before the zombie was
    assigned it again (or the zombie never was)."""


def stall_and_wake(
    processes: list[StallableProcess], stall: str
) -> tuple[StallableProcess, int, Figures]:
    """Stop the process owning two partitions inside a transaction of one, wake it as `stall`
    says; the zombie, the partition, and the figures of the takeover."""
    zombie = wait_until(lambda: next((p for p in processes if len(p.owned()) == 2), None),
                        30, "one process owning two partitions")
    heir = next(p for p in processes if p is not zombie)
    partition = min(zombie.owned())
    zombie.arm(partition)
    wait_until(zombie.stopped, 15, "the zombie stopped inside a transaction")
    stalled_at = _ts([line for line in zombie.log() if line["event"] == "stalling"][-1])
    if stall == "past-timeouts":
        wait_until(lambda: heir.committed_on(partition, stalled_at), 45,
                   "the heir committing on the zombie's partition")
    else:
        time.sleep(max(0.0, BETWEEN_S - (time.time() - stalled_at.timestamp())))
        assert not heir.committed_on(partition, stalled_at), "the heir did not wait"
    woken_at = time.time()
    zombie.resume()
    resumed = wait_until(
        lambda: min(filter(None, (p.committed_on(partition, stalled_at) for p in processes)),
                    default=None),
        45, "a commit on the zombie's partition by its next owner")
    waits = [line for line in heir.log() if line["event"] == "offsets stable"
             and partition in line["partitions"] and _ts(line) > stalled_at]
    after = [line for line in zombie.log() if _ts(line) > stalled_at]
    until_rebalance = next(
        (i for i, line in enumerate(after) if line["event"] in ("revoked", "assigned")),
        len(after),
    )
    # `resumed` is the earliest of both: the heir's commit, if any, is in its log already, or
    # the zombie took the partition back first (its commit there needs a new assignment).
    heir_commit = heir.committed_on(partition, stalled_at)
    taken_back = zombie.assigned_again(partition, stalled_at)
    return zombie, partition, Figures(
        stall_s=woken_at - stalled_at.timestamp(),
        pause_s=(resumed - stalled_at).total_seconds(),
        waited_s=waits[0]["waited_s"] if waits else float("nan"),
        zombie_committed=any(
            line["event"] == "batch committed" and partition in line["partitions"]
            for line in after[:until_rebalance]
        ),
        heir_decided_first=heir_commit is not None
        and (taken_back is None or heir_commit < taken_back),
    )


def check_exactly_once(kafka_config: dict[str, str], catalogue: Catalogue,
                       sent: list[dict[str, Any]]) -> None:
    """Each send answered once, no command accepted twice, versions gapless, keys unique."""
    sends = Counter(document["command_id"] for document in sent)
    results: dict[str, list[Any]] = defaultdict(list)
    for record in read_all(kafka_config, catalogue.command_results.name):
        result = decode_result(record.value or b"")
        results[result.command_id].append(result)
    answered = {command_id: len(results[command_id]) for command_id in sends}
    assert answered == dict(sends), {c: n for c, n in answered.items() if n != sends[c]}
    events = read_all(kafka_config, catalogue.events.name)
    keys = Counter(record.key for record in events)
    assert [key for key, count in keys.items() if count > 1] == []
    by_stream: dict[str, list[int]] = defaultdict(list)
    caused: Counter[str] = Counter()
    for record in events:
        event = decode_event(record.value or b"")
        by_stream[event.stream_id].append(event.version)
        caused[event.causation_id] += 1
    for stream_id, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), (stream_id, versions)
    for command_id, answers in results.items():
        accepted = [answer for answer in answers if answer.status == "accepted"]
        assert len(accepted) <= 1, answers
        assert caused[command_id] == (len(accepted[0].event_ids) if accepted else 0), answers
    assert len(by_stream) == USERS


@pytest.mark.timeout(210)
@pytest.mark.parametrize("stall", ["past-timeouts", "between-timeouts"])
def test_a_stalled_zombie_decides_nothing_twice(
    kafka_config: dict[str, str], catalogue: Catalogue, tmp_path: Path, stall: str
) -> None:
    processes = [StallableProcess(kafka_config, catalogue, tmp_path, str(i)) for i in range(2)]
    try:
        wait_until(lambda: all(p.owned() for p in processes)
                   and set().union(*(p.owned() for p in processes)) == {0, 1, 2},
                   45, "both processors owning partitions")
        with Load(kafka_config, catalogue) as load:
            time.sleep(1)
            zombie, partition, figures = stall_and_wake(processes, stall)
            if stall == "between-timeouts" and not figures.heir_decided_first:
                print(f"\nthe zombie took partition {partition} back before the heir decided "
                      "on it: armed once more")
                time.sleep(2)
                zombie, partition, figures = stall_and_wake(processes, stall)
            time.sleep(2)  # the load goes on after the zombie woke
        wait_until(lambda: len(read_all(kafka_config, catalogue.command_results.name))
                   >= len(load.sent), 60, "every command answered")
    finally:
        codes = {p.instance: p.stop() for p in processes}
    fenced = any("producer fenced" in line["event"] for line in zombie.log())
    print(f"\n{stall}: stalled {figures.stall_s:.1f} s in a transaction of partition "
          f"{partition}; the heir waited {figures.waited_s:.1f} s for stable offsets and first "
          f"committed there {figures.pause_s:.1f} s after the stall; the zombie's transaction "
          f"{'committed' if figures.zombie_committed else 'did not commit'}, fenced: {fenced}, "
          f"the heir decided there before the zombie took it back: "
          f"{figures.heir_decided_first}; exit codes {codes}; {len(load.sent)} commands")
    check_exactly_once(kafka_config, catalogue, load.sent)
    if stall == "past-timeouts":
        assert not figures.zombie_committed
    else:
        assert figures.zombie_committed, (
            "the zombie's stalled transaction did not commit when it woke: the stall did not "
            "end in a late commit, so the wait for stable offsets was not exercised")
        assert figures.heir_decided_first, (
            "twice the zombie took its partition back before the heir decided anything on it: "
            "no decision was made after the late commit, so the case proves nothing")
    assert codes[next(p.instance for p in processes if p is not zombie)] == 0
    assert codes[zombie.instance] in (0, 78)
