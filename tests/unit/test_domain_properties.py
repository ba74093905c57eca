"""Properties of the deciders over random command sequences: fold, versions, rejections, purity."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.aggregates import State, decide, fold
from pipeline.domain.common import DecisionContext, Rejection
from topics import (
    CancelOrder,
    Command,
    CreateOrder,
    CreateUser,
    DeactivateUser,
    Event,
    OrderItem,
    PayOrder,
    ReactivateUser,
    ShipOrder,
    UpdateUser,
    decode_event,
    encode,
    from_envelope,
    to_envelope,
)

NOW = datetime(2024, 1, 1, tzinfo=UTC)
CONTEXT = DecisionContext(now=NOW, customer_status=lambda user_id: "active")

names = st.sampled_from(["Ada", "Grace", "Linus", " Barbara "])
emails = st.sampled_from(["a@example.com", "B@Example.org", "c@example.net"])
user_commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(CreateUser, email=emails, name=names),
    st.builds(UpdateUser, email=st.none() | emails, name=st.none() | names),
    st.builds(DeactivateUser, reason=st.none() | st.just("spam")),
    st.just(ReactivateUser()),
)
items = st.lists(
    st.builds(
        OrderItem,
        sku=st.sampled_from(["A", "B", "C"]),
        quantity=st.integers(1, 5),
        unit_price=st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=4,
).map(tuple)
order_commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(CreateOrder, customer_id=st.just("u1"), items=items, currency=st.just("EUR")),
    st.builds(PayOrder, payment_ref=st.just("p1")),
    st.just(ShipOrder()),
    st.builds(CancelOrder, reason=st.just("changed mind")),
)
sequences = st.lists(user_commands, max_size=12) | st.lists(order_commands, max_size=12)


def run(commands: list[Command]) -> tuple[State | None, int, list[Event]]:
    """Step by step, checking the per-step properties; returns final state, version, all events."""
    state: State | None = None
    version = 0
    history: list[Event] = []
    for command in commands:
        decision = decide(state, command, CONTEXT)
        assert decide(state, command, CONTEXT) == decision  # deterministic
        if isinstance(decision, Rejection):
            continue  # a rejection emits nothing; state and version are left as they were
        for event in decision:
            state = fold(state, [event])
            version += 1
            history.append(event)
    return state, version, history


@settings(max_examples=150, deadline=None)
@given(sequences)
def test_folding_all_events_reproduces_the_stepwise_state(commands: list[Command]) -> None:
    state, version, history = run(commands)
    assert fold(None, history) == state
    assert version == len(history)


@settings(max_examples=100, deadline=None)
@given(sequences)
def test_versions_go_up_by_one_per_event_through_envelopes(commands: list[Command]) -> None:
    _, _, history = run(commands)
    envelopes = [
        to_envelope(event, "x-s1", index, f"x-s1@{index}", NOW, "c", None)
        for index, event in enumerate(history, start=1)
    ]
    assert [envelope.version for envelope in envelopes] == list(range(1, len(history) + 1))
    assert [from_envelope(decode_event(encode(envelope))) for envelope in envelopes] == history


@settings(max_examples=100, deadline=None)
@given(sequences, st.data())
def test_rejection_leaves_state_unchanged(commands: list[Command], data: st.DataObject) -> None:
    state, _, _ = run(commands)
    probe = data.draw(user_commands if commands and _is_user(commands) else order_commands)
    before = state
    decision = decide(state, probe, CONTEXT)
    assert state == before
    if isinstance(decision, Rejection):
        assert decision.code.split(".")[0] in {"user", "order"}


def _is_user(commands: list[Command]) -> bool:
    return isinstance(commands[0], CreateUser | UpdateUser | DeactivateUser | ReactivateUser)
