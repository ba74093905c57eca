"""The contract's exceptions: decoding, upcasting, unknown types, impossible histories, admin.

Every one derives from `TopicsError`, and every one is exported by `topics`.

Exception tree::

    TopicsError
    ├── DecodeError            bytes read from a topic could not become an envelope
    │   ├── TooLarge           over the size limit for that kind of message (checked first)
    │   ├── NotJson            not UTF-8 JSON at all
    │   └── InvalidEnvelope    JSON, but not a valid envelope (missing/extra/ill-typed fields)
    ├── InvalidStreamId        a stream id or event key that does not parse
    ├── UpcastError            an event's schema version cannot be brought to the current one
    ├── UnknownMessageType     a command or event type name the registries do not know (a KeyError)
    ├── InvalidHistory         an event that cannot follow its stream's state (corrupt stream)
    ├── InvalidTopicName       a topic prefix or projector name Kafka would not accept
    └── AdminError             the cluster could not be inspected or changed by `topics.apply`
        ├── BrokerUnavailable  no broker answered (start one: `cqrs services up`)
        └── TopicCreationFailed  the broker refused to create a catalogue topic

`InvalidHistory` is the contract's because the log is: both sides fold the same streams (the
write side's `evolve`, the read side's rows and documents), and an event before its stream's
creation, or a second creation, is impossible for either. A command that breaks a rule is not an
exception anywhere: the write side's `decide` returns a rejection (data).

Decode errors carry a readable message (safe to put in a DLQ header or a rejected result).
"""

from __future__ import annotations


class TopicsError(Exception):
    """Base of every error raised by `topics`."""


class DecodeError(TopicsError):
    """The bytes could not be decoded into the expected envelope."""


class TooLarge(DecodeError):
    """The message exceeds the size limit for its kind."""


class NotJson(DecodeError):
    """The message is not UTF-8 encoded JSON."""


class InvalidEnvelope(DecodeError):
    """The message is JSON but does not satisfy the envelope schema."""


class InvalidStreamId(TopicsError, ValueError):
    """A stream id (`<aggregate_type>-<aggregate_id>`) or event key that does not parse."""


class UpcastError(TopicsError):
    """No upcaster chain leads from an event's schema version to the one required."""


class UnknownMessageType(TopicsError, KeyError):
    """A type name that is not in the command or event registry (`topics.COMMANDS`, `EVENTS`)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown message type"


class InvalidHistory(TopicsError):
    """An event that cannot follow the current state of its stream."""


class InvalidTopicName(TopicsError, ValueError):
    """A topic prefix or projector name that would make an illegal Kafka topic name."""


class AdminError(TopicsError):
    """The cluster could not be inspected or changed."""


class BrokerUnavailable(AdminError):
    """No Kafka broker answered within the timeout."""


class TopicCreationFailed(AdminError):
    """The broker refused to create one or more catalogue topics (its reason is in the message)."""
