"""Aligned text tables and the cell formats the benchmarks share."""

from __future__ import annotations

import math
from collections.abc import Sequence


def render(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Aligned columns: the first left-aligned, the figures right-aligned."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        cells = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        cells[0] = row[0].ljust(widths[0])
        lines.append(" | ".join(cells).rstrip())
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def share(value: float | None) -> str:
    """A share as a whole percentage (100% = one core); empty for None."""
    return "" if value is None else f"{value:.0%}"
