"""``user.registered`` events as auth publishes them, for tools that need users in a service's
replica without going through auth (benchmarks creating hundreds of users)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import UserRegistered


def registration_envelopes(ids: list[uuid.UUID], *, name: str = "bench") -> list[Envelope[object]]:
    """One event per id, named ``<name>0000``, ``<name>0001``...; published by "auth"'s rules."""
    now = datetime.now(UTC)
    envelopes: list[Envelope[object]] = [
        make_envelope(
            UserRegistered(
                user_id=user_id,
                email=f"{name}{index}@{name}.example",
                username=f"{name}{index:04d}",
                display_name=f"{name.title()} {index}",
                created_at=now,
            ),
            producer=name,
        )
        for index, user_id in enumerate(ids)
    ]
    return envelopes
