"""Ending a session in Postgres, with its ``session.revoked`` event in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from auth.config import SERVICE
from auth.repository import AccountRepository
from contracts import make_envelope
from contracts.events import RevocationReason, SessionRevoked
from servicekit.outbox import add_to_outbox
from servicekit.postgres import Connection


async def revoke_session(
    conn: Connection,
    accounts: AccountRepository,
    session_id: UUID,
    *,
    reason: RevocationReason,
    now: datetime,
    access_token_seconds: int,
) -> SessionRevoked | None:
    """Revoke the session if it is still live; its event, or None when it already was not.
    The caller writes the Redis key after the commit (``RevocationList.revoke_session``)."""
    owner = await accounts.revoke_session(conn, session_id, reason, now)
    if owner is None:
        return None
    event = SessionRevoked(
        user_id=owner,
        session_id=session_id,
        reason=reason,
        revoked_at=now,
        expires_at=now + timedelta(seconds=access_token_seconds),
    )
    await add_to_outbox(conn, [make_envelope(event, producer=SERVICE)])
    return event
