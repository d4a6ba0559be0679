"""The few statistics every phase of the benchmark reports, computed one way."""
from __future__ import annotations


def percentile(values: list[float], q: float) -> float | None:
    """The *q*-th percentile by nearest rank; None for no values."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def ms(value: float | None) -> float | None:
    """Seconds as milliseconds, two decimals."""
    return None if value is None else round(value * 1000, 2)
