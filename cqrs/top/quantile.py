"""Quantiles from cumulative histogram buckets, interpolated as PromQL's histogram_quantile."""

from __future__ import annotations

import math


def bucket_delta(current: dict[float, float], previous: dict[float, float]) -> dict[float, float]:
    """The observations between two scrapes; after a counter reset (a restart), the current."""
    delta = {bound: count - previous.get(bound, 0.0) for bound, count in current.items()}
    return current if any(count < 0 for count in delta.values()) else delta


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` (upper bound -> count, +Inf included);
    None without observations. Linear within a bucket; in the +Inf bucket, its lower bound."""
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
