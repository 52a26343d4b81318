"""Auth's rules on in-memory stores (``fake_stores``): registration, sign-in and its limits,
refresh-token rotation and reuse, sessions, password change, account deletion, profiles. No
Postgres, Redis or MongoDB: what the use cases decide, and the events they commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from auth.account_service import AccountService
from auth.api import (
    ChangePasswordRequest,
    DeleteAccountRequest,
    LoginRequest,
    RegisterRequest,
    UpdateMeRequest,
    UpdateProfileRequest,
)
from auth.config import LoginLimits
from auth.profile_service import ProfileService
from auth.service import AuthService, ClientInfo
from contracts.events import (
    SessionRevoked,
    UserAvatarChanged,
    UserDeleted,
    UserRegistered,
    UserUpdated,
)
from servicekit.refusals import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooMany,
    Unavailable,
)
from servicekit.settings import JwtSettings
from servicekit.tokens import AccessClaims, TokenIssuer, decode_access_token
from servicekit.unit_of_work import RecordingUnitOfWork
from services.auth.tests.unit.fake_stores import (
    AvatarAnswers,
    CountingLimiter,
    InMemoryAccounts,
    InMemoryProfiles,
    PlainPasswords,
    RecordedRevocations,
)

# The tokens the service issues are checked against the real clock (``claims_of``).
NOW = datetime.now(UTC).replace(microsecond=0)
JWT = JwtSettings(secret="s" * 40, expiration_seconds=3600, issuer="chat-auth", audience="chat-api")
LIMITS = LoginLimits(
    account_failures=3,
    account_failures_all_addresses=5,
    ip_attempts=50,
    ip_registrations=50,
    window_seconds=900,
)
PASSWORD = "correct horse 1"
HOME = ClientInfo(ip="10.0.0.1", user_agent="phone")
ELSEWHERE = ClientInfo(ip="10.9.9.9", user_agent="laptop")


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Auth:
    uow: RecordingUnitOfWork = field(default_factory=RecordingUnitOfWork)
    accounts: InMemoryAccounts = field(default_factory=InMemoryAccounts)
    profiles: InMemoryProfiles = field(default_factory=InMemoryProfiles)
    revocations: RecordedRevocations = field(default_factory=RecordedRevocations)
    limiter: CountingLimiter = field(default_factory=CountingLimiter)
    avatars: AvatarAnswers = field(default_factory=AvatarAnswers)
    clock: Clock = field(default_factory=Clock)

    @property
    def service(self) -> AuthService:
        return AuthService(
            uow=self.uow,
            accounts=self.accounts,
            profiles=self.profiles,
            hasher=PlainPasswords(),
            issuer=TokenIssuer(JWT),
            revocations=self.revocations,
            limiter=self.limiter,
            limits=LIMITS,
            access_token_seconds=JWT.expiration_seconds,
            refresh_token_seconds=30 * 24 * 3600,
            clock=self.clock,
        )

    @property
    def account(self) -> AccountService:
        return AccountService(
            uow=self.uow,
            accounts=self.accounts,
            profiles=self.profiles,
            hasher=PlainPasswords(),
            revocations=self.revocations,
            limiter=self.limiter,
            limits=LIMITS,
            access_token_seconds=JWT.expiration_seconds,
            clock=self.clock,
        )

    @property
    def profile(self) -> ProfileService:
        return ProfileService(
            uow=self.uow, profiles=self.profiles, avatars=self.avatars, clock=self.clock
        )

    def committed[E](self, kind: type[E]) -> list[E]:
        return [event for event in self.uow.events if isinstance(event, kind)]


def signup(name: str = "alice", password: str = PASSWORD) -> RegisterRequest:
    return RegisterRequest(email=f"{name}@example.com", username=name, password=password)


def claims_of(token: str) -> AccessClaims:
    """The claims of a token the service issued, checked as every service checks them."""
    return decode_access_token(token, JWT)


async def test_registering_stores_the_account_opens_a_session_and_announces_it() -> None:
    auth = Auth()
    result = await auth.service.register(signup(), HOME)
    assert result.user.username == "alice"
    assert result.user.display_name == "alice"  # the username until one is chosen
    (registered,) = auth.committed(UserRegistered)
    assert (registered.user_id, registered.email) == (result.user.id, "alice@example.com")
    (session,) = auth.accounts.sessions.values()
    assert (session.user_id, session.user_agent, session.client_ip) == (
        result.user.id,
        "phone",
        "10.0.0.1",
    )
    assert result.refresh_token


async def test_a_taken_email_or_username_is_a_conflict_naming_the_fields() -> None:
    auth = Auth()
    await auth.service.register(signup(), HOME)
    with pytest.raises(Conflict) as taken:
        await auth.service.register(
            RegisterRequest(email="ALICE@example.com", username="Alice", password="another pw 12"),
            HOME,
        )
    assert [e.field for e in taken.value.errors or []] == ["email", "username"]
    # A registration that loses the race at the insert is refused the same way, and rolled back.
    auth.accounts.race_on_insert = "username"
    with pytest.raises(Conflict) as raced:
        await auth.service.register(signup("bob"), HOME)
    assert [e.field for e in raced.value.errors or []] == ["username"]
    assert auth.uow.rollbacks == 1
    assert len(auth.committed(UserRegistered)) == 1


async def test_an_unusable_password_or_name_is_invalid_and_changes_nothing() -> None:
    auth = Auth()
    with pytest.raises(InvalidInput) as invalid:
        await auth.service.register(signup(password="short"), HOME)
    assert [e.field for e in invalid.value.errors or []] == ["password"]
    assert auth.accounts.users == {}
    assert auth.uow.events == []


async def test_login_by_email_or_username_but_never_both_or_neither() -> None:
    auth = Auth()
    await auth.service.register(signup(), HOME)
    by_name = await auth.service.login(
        LoginRequest(password="correct horse 1", username="ALICE"), HOME
    )
    by_mail = await auth.service.login(
        LoginRequest(password="correct horse 1", email="alice@example.com"), HOME
    )
    assert by_name.user.id == by_mail.user.id
    for ambiguous in (
        LoginRequest(password="x", email="alice@example.com", username="alice"),
        LoginRequest(password="x"),
    ):
        with pytest.raises(InvalidInput):
            await auth.service.login(ambiguous, HOME)


async def test_wrong_passwords_lock_one_address_out_not_the_owner_elsewhere() -> None:
    auth = Auth()
    await auth.service.register(signup(), HOME)
    wrong = LoginRequest(password="guess", username="alice")
    for _ in range(LIMITS.account_failures):
        with pytest.raises(NotAuthenticated):
            await auth.service.login(wrong, ELSEWHERE)
    with pytest.raises(TooMany) as locked:
        await auth.service.login(
            LoginRequest(password="correct horse 1", username="alice"), ELSEWHERE
        )
    assert locked.value.retry_after_seconds == LIMITS.window_seconds
    # The owner, from their own address, still signs in, and that clears their count.
    await auth.service.login(LoginRequest(password="correct horse 1", username="alice"), HOME)


async def test_an_unknown_account_fails_like_a_wrong_password() -> None:
    auth = Auth()
    with pytest.raises(NotAuthenticated) as unknown:
        await auth.service.login(LoginRequest(password="x", username="nobody"), HOME)
    await auth.service.register(signup(), HOME)
    with pytest.raises(NotAuthenticated) as wrong:
        await auth.service.login(LoginRequest(password="x", username="alice"), HOME)
    assert unknown.value.detail == wrong.value.detail


async def test_a_refresh_rotates_the_token_and_a_rotated_one_ends_the_session() -> None:
    auth = Auth()
    first = await auth.service.register(signup(), HOME)
    second = await auth.service.refresh(first.refresh_token, HOME)
    assert second.refresh_token != first.refresh_token
    assert second.user.id == first.user.id
    # The first token again: someone holds a copy. The whole session ends, now and in Redis.
    with pytest.raises(NotAuthenticated, match="reuse"):
        await auth.service.refresh(first.refresh_token, HOME)
    (revoked,) = auth.committed(SessionRevoked)
    assert revoked.reason == "refresh_reuse"
    assert auth.revocations.sessions == [revoked.session_id]
    with pytest.raises(NotAuthenticated):
        await auth.service.refresh(second.refresh_token, HOME)


async def test_an_expired_or_unknown_refresh_token_is_refused() -> None:
    auth = Auth()
    result = await auth.service.register(signup(), HOME)
    with pytest.raises(NotAuthenticated):
        await auth.service.refresh("not-a-token", HOME)
    auth.clock.now = NOW + timedelta(days=31)
    with pytest.raises(NotAuthenticated):
        await auth.service.refresh(result.refresh_token, HOME)
    assert auth.committed(SessionRevoked) == []


async def test_logout_ends_the_session_once_and_writes_redis_every_time() -> None:
    auth = Auth()
    result = await auth.service.register(signup(), HOME)
    claims = claims_of(result.token)
    await auth.service.logout(claims)
    await auth.service.logout(claims)  # a retry repairs a lost Redis write
    assert [e.reason for e in auth.committed(SessionRevoked)] == ["logout"]
    assert auth.revocations.sessions == [claims.session_id, claims.session_id]


async def test_a_password_change_ends_every_other_session_and_keeps_this_one() -> None:
    auth = Auth()
    phone = await auth.service.register(signup(), HOME)
    laptop = await auth.service.login(
        LoginRequest(password="correct horse 1", username="alice"), ELSEWHERE
    )
    claims = claims_of(phone.token)
    with pytest.raises(Forbidden) as wrong:
        await auth.account.change_password(
            claims,
            ChangePasswordRequest(current_password="nope", new_password="brand new pw 2"),
            HOME.ip,
        )
    assert [e.field for e in wrong.value.errors or []] == ["currentPassword"]
    await auth.account.change_password(
        claims,
        ChangePasswordRequest(current_password="correct horse 1", new_password="brand new pw 2"),
        HOME.ip,
    )
    laptop_session = claims_of(laptop.token).session_id
    assert [(e.session_id, e.reason) for e in auth.committed(SessionRevoked)] == [
        (laptop_session, "password_changed")
    ]
    assert auth.revocations.sessions == [laptop_session]
    await auth.service.login(LoginRequest(password="brand new pw 2", username="alice"), HOME)


async def test_one_may_sign_out_only_ones_own_live_session() -> None:
    auth = Auth()
    alice = claims_of((await auth.service.register(signup(), HOME)).token)
    bob = claims_of((await auth.service.register(signup("bob"), HOME)).token)
    with pytest.raises(NotFound):
        await auth.account.sign_out(alice, bob.session_id)
    with pytest.raises(NotFound):
        await auth.account.sign_out(alice, uuid.uuid4())
    await auth.account.sign_out(alice, alice.session_id)
    with pytest.raises(NotFound):  # already ended
        await auth.account.sign_out(alice, alice.session_id)
    assert [e.reason for e in auth.committed(SessionRevoked)] == ["signed_out"]
    listed = await auth.account.sessions(bob)
    assert [(s.id, s.current) for s in listed.sessions] == [(bob.session_id, True)]


async def test_deleting_an_account_ends_its_sessions_and_announces_it() -> None:
    auth = Auth()
    result = await auth.service.register(signup(), HOME)
    await auth.service.login(LoginRequest(password="correct horse 1", username="alice"), ELSEWHERE)
    claims = claims_of(result.token)
    await auth.profiles.update(claims.user_id, {"bio": "hi"})
    await auth.account.delete_account(
        claims, DeleteAccountRequest(password="correct horse 1"), HOME.ip
    )
    assert len(auth.committed(SessionRevoked)) == 2
    assert {e.reason for e in auth.committed(SessionRevoked)} == {"account_deleted"}
    assert [e.user_id for e in auth.committed(UserDeleted)] == [claims.user_id]
    assert auth.revocations.users == [claims.user_id]
    assert auth.profiles.stored == {}
    with pytest.raises(NotAuthenticated):
        await auth.service.me(claims.user_id)


async def test_a_new_display_name_is_normalised_and_announced() -> None:
    auth = Auth()
    result = await auth.service.register(signup(), HOME)
    view = await auth.service.update_me(result.user.id, UpdateMeRequest(display_name="\uff21lice"))
    assert view.display_name == "Alice"  # NFKC: the full-width letter is an A
    (updated,) = auth.committed(UserUpdated)
    assert updated.display_name == "Alice"
    with pytest.raises(InvalidInput):
        await auth.service.update_me(result.user.id, UpdateMeRequest(display_name="a\u202eb"))


async def test_an_avatar_must_pass_chats_check_and_its_change_is_announced() -> None:
    auth = Auth()
    user = (await auth.service.register(signup(), HOME)).user.id
    mine, foreign = uuid.uuid4(), uuid.uuid4()
    auth.avatars.problems[foreign] = "is not an image you uploaded"
    with pytest.raises(InvalidInput) as refused:
        await auth.profile.update(user, UpdateProfileRequest(avatar_media_id=foreign), "t")
    assert [e.field for e in refused.value.errors or []] == ["avatarMediaId"]
    profile = await auth.profile.update(user, UpdateProfileRequest(avatar_media_id=mine), "t")
    assert profile.avatar_media_id == mine
    (changed,) = auth.committed(UserAvatarChanged)
    assert changed.avatar_media_id == mine
    auth.avatars.unreachable = True
    with pytest.raises(Unavailable):
        await auth.profile.update(user, UpdateProfileRequest(avatar_media_id=mine), "t")
    # A bio alone asks nothing of chat and announces nothing.
    await auth.profile.update(user, UpdateProfileRequest(bio="hello"), "t")
    assert len(auth.committed(UserAvatarChanged)) == 1
