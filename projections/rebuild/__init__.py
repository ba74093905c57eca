"""Rebuild a projection into a new schema / index from the events topic, then swap it in.

`build` (`projections.rebuild.build`) reads `<prefix>events` in this process (read_committed, no
consumer group), applies it through the runtime's `BatchProcessor` and the projector's own store,
so the projection logic is the live projector's, not a copy. `cqrs rebuild` is the command line.
"""

from projections.rebuild.positions import Bounds, PositionError, parse_offsets, parse_until

__all__ = ["Bounds", "PositionError", "parse_offsets", "parse_until"]
