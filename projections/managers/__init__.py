"""Process managers: cancel the open orders of a customer deactivated or forgotten, and orders
accepted for a customer already inactive (docs/process-managers.md).

Pure parts: `facts` (what an event tells of a customer), `routing` (event → fact), `state`
(a customer's status and orders, and the one `evolve`), `decide` (the two managers, their
deterministic command ids), `commands` (a cancel as a commands-topic record). `handling` runs them
over records without Faust; `app` is the Faust wiring (`make_manager_app`), the only module here
that imports Faust.
"""

from projections.managers.decide import (
    CANCEL_ON_DEACTIVATION,
    LATE_ORDER,
    MANAGERS,
    Cancel,
    Decision,
    command_id_for,
    decide,
)
from projections.managers.facts import Fact, decode_fact, encode_fact
from projections.managers.state import CustomerState, decode_state, encode_state, evolve

__all__ = [
    "CANCEL_ON_DEACTIVATION",
    "LATE_ORDER",
    "MANAGERS",
    "Cancel",
    "CustomerState",
    "Decision",
    "Fact",
    "command_id_for",
    "decide",
    "decode_fact",
    "decode_state",
    "encode_fact",
    "encode_state",
    "evolve",
]
