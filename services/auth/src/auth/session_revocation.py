"""Ending a session in Postgres, with its ``session.revoked`` event in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from auth.ports import Accounts
from contracts.events import RevocationReason, SessionRevoked
from servicekit.unit_of_work import Work


async def revoke_session(
    work: Work,
    accounts: Accounts,
    session_id: UUID,
    *,
    reason: RevocationReason,
    now: datetime,
    access_token_seconds: int,
) -> SessionRevoked | None:
    """Revoke the session if it is still live; its event, or None when it already was not.
    The caller writes the Redis key after the commit (``RevocationList.revoke_session``)."""
    owner = await accounts.revoke_session(work.conn, session_id, reason, now)
    if owner is None:
        return None
    event = SessionRevoked(
        user_id=owner,
        session_id=session_id,
        reason=reason,
        revoked_at=now,
        expires_at=now + timedelta(seconds=access_token_seconds),
    )
    work.emit(event)
    return event
