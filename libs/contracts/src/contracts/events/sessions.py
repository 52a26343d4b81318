"""Events about login sessions; the gateway disconnects the sockets of a revoked session."""

from typing import Literal
from uuid import UUID

from contracts import names
from contracts.wire import Event, UtcDatetime

RevocationReason = Literal[
    "logout", "refresh_reuse", "admin", "account_deleted", "password_changed", "signed_out"
]


class SessionRevoked(Event, frozen=True, kw_only=True):
    """A session ended; its access tokens are refused until `expiresAt`."""

    event_type = names.SESSION_REVOKED

    user_id: UUID
    session_id: UUID
    reason: RevocationReason
    revoked_at: UtcDatetime
    expires_at: UtcDatetime
