"""The exceptions raised by the `topics` package; every one derives from `TopicsError`.

Exception tree::

    TopicsError
    ├── DecodeError            bytes read from a topic could not become an envelope
    │   ├── TooLarge           over the size limit for that kind of message (checked first)
    │   ├── NotJson            not UTF-8 JSON at all
    │   └── InvalidEnvelope    JSON, but not a valid envelope (missing/extra/ill-typed fields)
    ├── InvalidStreamId        a stream id or event key that does not parse
    ├── UpcastError            an event's schema version cannot be brought to the current one
    ├── InvalidTopicName       a topic prefix or projector name Kafka would not accept
    └── AdminError             the cluster could not be inspected or changed by `topics.admin`
        ├── BrokerUnavailable  no broker answered (start one: `cqrs services up`)
        └── TopicCreationFailed  the broker refused to create a catalogue topic

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


class InvalidTopicName(TopicsError, ValueError):
    """A topic prefix or projector name that would make an illegal Kafka topic name."""


class AdminError(TopicsError):
    """The cluster could not be inspected or changed."""


class BrokerUnavailable(AdminError):
    """No Kafka broker answered within the timeout."""


class TopicCreationFailed(AdminError):
    """The broker refused to create one or more catalogue topics (its reason is in the message)."""
