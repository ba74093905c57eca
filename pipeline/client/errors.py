"""The exceptions raised by `pipeline.client`; every one derives from `ClientError`.

Exception tree::

    ClientError
    ├── InvalidCommand         refused locally, before anything is sent
    │   ├── UnknownCommandType     `type` is not in `topics.COMMANDS`
    │   └── InvalidCommandData     `data` (or the envelope) does not validate; carries the code
    ├── KafkaUnavailable       no broker answered the metadata request in time
    ├── TopicMissing           the commands (or results) topic does not exist: `cqrs topics apply`
    ├── NotAuthorized          the broker refused this principal a topic it needs (ACLs)
    ├── DeliveryFailed         the broker did not acknowledge every command (nothing is retried
    │                          beyond librdkafka's own idempotent retries)
    └── ResultTimeout          no result arrived in time; carries the results that did arrive

A command the processor *rejects* is not an exception: it is a `CommandResult` with
`status="rejected"`, returned like any other result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from topics import CommandResult


class ClientError(Exception):
    """Base of every error raised by the command client."""


class InvalidCommand(ClientError, ValueError):
    """The command would be rejected by the processor; it was not sent."""

    def __init__(self, message: str, code: str = "validation.invalid") -> None:
        super().__init__(message)
        self.code = code


class UnknownCommandType(InvalidCommand):
    """A command type that no aggregate handles."""


class InvalidCommandData(InvalidCommand):
    """The command's data or envelope fields do not validate."""


class KafkaUnavailable(ClientError):
    """The cluster could not be reached (bootstrap servers, network, credentials)."""


class TopicMissing(ClientError):
    """A topic the client needs does not exist (topics are never auto-created here)."""


class NotAuthorized(ClientError):
    """The broker's ACLs refuse the client's principal a topic it needs (writing the commands,
    reading the results); the message holds the broker's error name."""


class DeliveryFailed(ClientError):
    """Some commands were not acknowledged by the broker; `failed` maps command id to error."""

    def __init__(self, message: str, failed: Mapping[str, str], sent: Sequence[str]) -> None:
        super().__init__(message)
        self.failed = dict(failed)
        self.sent = list(sent)


class ResultTimeout(ClientError, TimeoutError):
    """No result for `pending` within the timeout; `results` holds those that did arrive."""

    def __init__(
        self, message: str, pending: Sequence[str], results: Mapping[str, CommandResult]
    ) -> None:
        super().__init__(message)
        self.pending = list(pending)
        self.results = dict(results)
