"""Decoding is budgeted by the bytes an image will hold, read from its header."""

from __future__ import annotations

import asyncio

import pytest

from devstack import sample_images
from workers.media import DecodeBudget
from workers.media_images import BYTES_PER_PIXEL, PEAK_COPIES, MediaRejectedError, decode_cost


def test_the_cost_comes_from_the_header_and_unreadable_data_costs_nothing() -> None:
    assert decode_cost(sample_images.png(100, 50)) == 100 * 50 * BYTES_PER_PIXEL * PEAK_COPIES
    assert decode_cost(b"not an image") == 0


async def test_decodes_that_do_not_fit_together_wait_and_one_that_never_fits_is_refused() -> None:
    budget = DecodeBudget(100)
    order: list[str] = []

    async def decode(name: str, cost: int, hold: float) -> None:
        async with budget.reserve(cost):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.gather(decode("a", 60, 0.05), decode("b", 60, 0.0), decode("c", 40, 0.0))
    assert order[:2] == ["a in", "c in"]  # b (60) waits until a's 60 are back
    assert order.index("b in") > order.index("a out")
    with pytest.raises(MediaRejectedError, match="too large to decode"):
        async with budget.reserve(101):
            pass
