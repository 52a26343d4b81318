"""Chat use cases: conversations, the send path, history, edits, deletes and read markers.

One send path serves REST (one command) and the ``message.send`` commands from the queue (a
batch in one transaction): it runs inside the caller's transaction, takes the conversations' row
locks, assigns the next seqs, and writes the messages, the senders' read markers and the
``message.created`` outbox rows together. A repeated ``(sender, clientMessageId)`` returns the
stored message and writes nothing. Who a message notifies is decided here, from each
participant's notification level, so the workers' work grows with mentions, not members.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chat.api import (
    ConversationPage,
    CreateConversationRequest,
    MessagesQuery,
    NotificationLevelResponse,
    ReadResponse,
)
from chat.domain import (
    ClientMessageIdTaken,
    ConversationRow,
    LockedConversation,
    Membership,
    StoredMessage,
    advanced_read_seq,
    can_delete,
    can_manage,
    direct_key,
    mentioned_usernames,
    next_owner,
    notification_level,
    outranks,
    unread,
)
from chat.ports import (
    Attachments,
    Bodies,
    Changes,
    Conversations,
    CreationLimit,
    Directory,
    People,
    UserReplica,
)
from contracts.changes import NumberedChange
from contracts.chat_api import (
    ChangePage,
    ConversationIds,
    ConversationView,
    MessagePage,
    NotificationLevel,
    Participant,
)
from contracts.events import (
    ConversationCreated,
    ConversationEngaged,
    ConversationMemberAdded,
    ConversationMemberRemoved,
    ConversationMemberUpdated,
    ConversationSnapshot,
    ConversationUpdated,
    MemberRole,
    MessageAlreadyStored,
    MessageCreated,
    MessageDeleted,
    MessageRead,
    MessageRefused,
    MessageUpdated,
    MessageView,
    NotificationRequested,
)
from contracts.events.messages import RefusalCode
from contracts.wire import Event
from servicekit.display_text import message_problem, name_problem, normalized_name
from servicekit.logs import get_logger
from servicekit.page_cursors import parse_time_cursor, time_cursor
from servicekit.peer_api import PeerUnavailableError
from servicekit.refusals import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Refusal,
)
from servicekit.unit_of_work import UnitOfWork, Work

_log = get_logger("chat.service")

NO_CONVERSATION = "No such conversation"
BARRED = "This conversation no longer accepts messages (a block, or a deleted account)"


class UserNotYetKnownError(RuntimeError):
    """An event about a user arrived before their registration: retried later."""


@dataclass(frozen=True, slots=True)
class SendCommand:
    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    content: str
    client_message_id: str | None
    attachments: list[uuid.UUID]


@dataclass(frozen=True, slots=True)
class Sent:
    message: MessageView
    created: bool


class ChatService:
    def __init__(
        self,
        *,
        uow: UnitOfWork,
        store: Conversations,
        users: UserReplica,
        changes: Changes,
        people: People,
        bodies: Bodies,
        inline_body_bytes: int,
        attachments: Attachments,
        creations: CreationLimit,
        directory: Directory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._store = store
        self._users = users
        self._changes = changes
        self._people = people
        self._bodies = bodies
        self._inline_body_bytes = inline_body_bytes
        self._attachments = attachments
        self._creations = creations
        self._directory = directory
        self._clock = clock

    # --- conversations ------------------------------------------------------------------

    async def create_conversation(
        self, creator: uuid.UUID, request: CreateConversationRequest, token: str
    ) -> tuple[ConversationView, bool]:
        """The conversation and whether it is new (a direct pair returns the existing one).
        ``token`` is the caller's, to ask auth about users chat has not heard of yet."""
        others = list(dict.fromkeys(i for i in request.participant_ids if i != creator))
        kind = request.type or ("direct" if len(others) == 1 and request.title is None else "group")
        if kind == "direct" and len(others) != 1:
            raise InvalidInput(
                [FieldError("participantIds", "a direct conversation has exactly one other person")]
            )
        if kind == "direct" and request.title is not None:
            raise InvalidInput([FieldError("title", "a direct conversation has no title")])
        if not others:
            raise InvalidInput([FieldError("participantIds", "name at least one other person")])
        title = _checked_title(request.title)
        now = self._clock()
        row = ConversationRow(uuid.uuid4(), kind, title, creator, now, now, 0)
        key = direct_key(creator, others[0]) if kind == "direct" else None
        existing: uuid.UUID | None = None
        await self._learn_missing(token, others)
        async with self._uow.transaction() as work:
            conn = work.conn
            await self._check_reachable(work, creator, others, "participantIds")
            if key is None or await self._store.direct_conversation_id(conn, key) is None:
                # Only what creates a conversation is limited: reopening one is free.
                await self._creations.charge(creator)
            if await self._store.insert_conversation(conn, row, key):
                role = "owner" if kind == "group" else "member"
                members = [(creator, role), *((other, "member") for other in others)]
                await self._store.add_participants(conn, row.id, members, now)
                await self._store.engage(conn, row.id, [creator])
                work.emit(
                    ConversationCreated(
                        conversation_id=row.id,
                        type="direct" if kind == "direct" else "group",
                        title=row.title,
                        created_by=creator,
                        participant_ids=[creator, *others],
                        created_at=now,
                    )
                )
            else:
                assert key is not None
                existing = await self._store.direct_conversation_id(conn, key)
                assert existing is not None
        # Read once this connection is back in the pool: concurrent creates of one pair must
        # not each hold a connection while waiting for another (that starves the pool).
        if existing is not None:
            return await self.conversation(creator, existing), False
        return await self.conversation(creator, row.id), True

    async def conversation(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationView:
        async with self._uow.reading() as work:
            return await self._view_of(work, user_id, conversation_id)

    async def _view_of(
        self, work: Work, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationView:
        [view] = await self._conversation_views(
            work, [await self._member(work, conversation_id, user_id)], user_id
        )
        return view

    async def conversations(
        self, user_id: uuid.UUID, limit: int, cursor: str | None
    ) -> ConversationPage:
        after = _decode_cursor(cursor) if cursor else None
        async with self._uow.reading() as work:
            found = await self._store.conversations_of(work.conn, user_id, after, limit + 1)
            page = found[:limit]
            views = await self._conversation_views(work, page, user_id)
        next_cursor = None
        if len(found) > limit:
            last = page[-1].conversation
            next_cursor = time_cursor(last.last_activity_at, last.id)
        return ConversationPage(conversations=views, next_cursor=next_cursor)

    async def conversation_ids(self, user_id: uuid.UUID) -> ConversationIds:
        async with self._uow.reading() as work:
            ids, engaged = await self._store.conversation_ids_of(work.conn, user_id)
            blocked = [user for user, _ in await self._people.blocked_by(work.conn, user_id)]
        return ConversationIds(conversation_ids=ids, engaged_ids=engaged, blocked_ids=blocked)

    async def rename(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, title: str | None
    ) -> ConversationView:
        title = _checked_title(title)
        now = self._clock()
        async with self._uow.transaction() as work:
            membership = await self._member(work, conversation_id, user_id)
            if membership.conversation.type == "direct":
                raise Conflict("A direct conversation has no title")
            if not can_manage(membership.role):
                raise Forbidden("Only owners and admins rename a conversation")
            await self._store.update_title(work.conn, conversation_id, title, now)
            await self._change(
                work,
                conversation_id,
                now,
                ConversationUpdated(
                    conversation_id=conversation_id,
                    title=title,
                    updated_by=user_id,
                    updated_at=now,
                ),
            )
        return await self.conversation(user_id, conversation_id)

    async def add_participants(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        user_ids: list[uuid.UUID],
        token: str,
    ) -> ConversationView:
        now = self._clock()
        await self._learn_missing(token, user_ids)
        async with self._uow.transaction() as work:
            conn = work.conn
            membership = await self._member(work, conversation_id, user_id)
            if membership.conversation.type == "direct":
                raise Conflict("A direct conversation has two people")
            if not can_manage(membership.role):
                raise Forbidden("Only owners and admins add participants")
            await self._check_reachable(work, user_id, user_ids, "userIds")
            added = await self._store.add_participants(
                conn, conversation_id, [(i, "member") for i in dict.fromkeys(user_ids)], now
            )
            if added:
                snapshot = ConversationSnapshot(
                    conversation_id=conversation_id,
                    type="group",
                    title=membership.conversation.title,
                    created_by=membership.conversation.created_by,
                    participant_ids=await self._store.member_ids(conn, conversation_id),
                    created_at=membership.conversation.created_at,
                )
            for added_id in added:
                await self._change(
                    work,
                    conversation_id,
                    now,
                    ConversationMemberAdded(
                        conversation_id=conversation_id,
                        user_id=added_id,
                        role="member",
                        by=user_id,
                        at=now,
                        conversation=snapshot,
                    ),
                )
        return await self.conversation(user_id, conversation_id)

    async def remove_participant(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, removed_id: uuid.UUID
    ) -> None:
        now = self._clock()
        async with self._uow.transaction() as work:
            membership = await self._member(work, conversation_id, user_id)
            if membership.conversation.type == "direct":
                raise Conflict("Nobody leaves a direct conversation")
            if removed_id != user_id and not can_manage(membership.role):
                raise Forbidden("Only owners and admins remove others")
            removed_role = await self._store.role_of(work.conn, conversation_id, removed_id)
            if removed_role is None:
                raise NotFound("Not a participant")
            if removed_id != user_id and not outranks(membership.role, removed_role):
                raise Forbidden("Only an owner removes an owner or an admin")
            await self._remove_member(work, conversation_id, removed_id, user_id, now)

    # --- messages -----------------------------------------------------------------------

    async def send(self, command: SendCommand) -> Sent:
        """REST: one command in a transaction of its own; a refusal is raised."""
        try:
            async with self._uow.transaction() as work:
                [outcome] = await self.send_all_in(work, [command])
        except ClientMessageIdTaken:
            # The same clientMessageId, committed meanwhile for another conversation.
            raise Conflict("clientMessageId already used") from None
        if isinstance(outcome, Refusal):
            raise outcome
        return outcome

    async def send_all(self, commands: Sequence[SendCommand]) -> list[Sent | Refusal]:
        """The queue: a batch of commands in one transaction, an outcome for each, in order.
        A refused command is announced as ``message.refused``, so the sender's waiting ack is
        answered at once; a repeat of a stored one as ``message.already_stored``, so a resend
        is answered even when the gateway no longer remembers the first was stored."""
        async with self._uow.transaction() as work:
            outcomes = await self.send_all_in(work, commands)
            work.emit(
                *(
                    _answer_to_sender(command, outcome)
                    for command, outcome in zip(commands, outcomes, strict=True)
                    if command.client_message_id is not None
                    and (isinstance(outcome, Refusal) or not outcome.created)
                )
            )
        return outcomes

    async def send_all_in(
        self, work: Work, commands: Sequence[SendCommand]
    ) -> list[Sent | Refusal]:
        """The send path, inside the caller's transaction, for any number of commands.

        The conversations are locked once for the batch; each command then gets the next seq
        of its conversation in command order, and all new messages, their conversations' and
        senders' markers and their ``message.created`` events are written in two statements.
        A refusal (not a participant, a bad text, a clientMessageId used elsewhere) is that
        command's outcome and writes nothing for it.
        """
        outcomes: list[Sent | Refusal | None] = [_refused_text(c) for c in commands]
        pending = [c for c, outcome in zip(commands, outcomes, strict=True) if outcome is None]
        if not pending:
            return [o for o in outcomes if o is not None]
        conn = work.conn
        locked = await self._store.lock_conversations(
            conn,
            sorted({c.conversation_id for c in pending}),
            list({c.sender_id for c in pending}),
        )
        # After the locks: a concurrent send of the same id has committed or not started.
        keys = [(c.sender_id, c.client_message_id) for c in pending if c.client_message_id]
        batch = _SendBatch(locked, await self._store.messages_by_client_ids(conn, keys))
        for index, command in enumerate(commands):
            if outcomes[index] is None:
                try:
                    outcomes[index] = await self._append(conn, batch, command)
                except Refusal as refusal:
                    outcomes[index] = refusal
        if batch.messages:
            await self._store.append_messages(conn, batch.messages)
            work.emit(*batch.events)
        return [o for o in outcomes if o is not None]

    async def _append(self, conn: Any, batch: _SendBatch, command: SendCommand) -> Sent:
        conversation = batch.locked.get(command.conversation_id)
        if conversation is None or command.sender_id not in conversation.senders:
            raise NotFound(NO_CONVERSATION)
        if command.sender_id in conversation.barred:
            raise Forbidden(BARRED)
        key = (command.sender_id, command.client_message_id or "")
        if command.client_message_id is not None and (earlier := batch.stored.get(key)):
            if earlier.conversation_id != command.conversation_id:
                raise Conflict("clientMessageId already used")
            return Sent(await self._view(earlier), created=False)
        if command.attachments:
            await self._attachments.check_attachments(conn, command.sender_id, command.attachments)
        message_id = uuid.uuid4()
        in_mongo = len(command.content.encode()) > self._inline_body_bytes
        if in_mongo:
            await self._bodies.put(message_id, command.content)
        stored = StoredMessage(
            id=message_id,
            conversation_id=command.conversation_id,
            seq=batch.next_seq(command.conversation_id),
            sender_id=command.sender_id,
            client_message_id=command.client_message_id,
            content=None if in_mongo else command.content,
            body_in_mongo=in_mongo,
            attachments=command.attachments,
            created_at=self._clock(),
            edited_at=None,
            deleted_at=None,
        )
        view = _message_view(stored, command.content)
        named = mentioned_usernames(command.content)
        mentioned = (
            await self._store.members_named(conn, command.conversation_id, sorted(named))
            if named
            else []
        )
        mentioned_ids = [i for i in mentioned if i != command.sender_id]
        notify_ids = [
            i for i in conversation.notify_all if i != command.sender_id and i not in mentioned
        ]
        events: list[Event] = [MessageCreated(message=view)]
        if command.sender_id not in conversation.engaged:  # the first time they take part
            conversation.engaged.add(command.sender_id)
            engaged = ConversationEngaged(
                conversation_id=command.conversation_id,
                user_id=command.sender_id,
                at=stored.created_at,
            )
            events.append(engaged)
        if notify_ids or mentioned_ids:
            requested = NotificationRequested(
                message=view, notify_ids=notify_ids, mentioned_ids=mentioned_ids
            )
            events.append(requested)
        batch.add(key, stored, events)
        return Sent(view, created=True)

    async def history(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, query: MessagesQuery
    ) -> MessagePage:
        async with self._uow.reading() as work:
            conn = work.conn
            await self._member(work, conversation_id, user_id)
            if query.after is not None:
                found = await self._store.page_after(
                    conn, conversation_id, query.after, query.limit + 1
                )
                if query.before is not None:  # a range: after < seq < before, oldest first
                    found = [message for message in found if message.seq < query.before]
                page = found[: query.limit]
            else:
                found = await self._store.page_before(
                    conn, conversation_id, query.before, query.limit + 1
                )
                page = list(reversed(found[: query.limit]))
        return MessagePage(messages=await self._views(page), has_more=len(found) > query.limit)

    async def edit(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID, content: str
    ) -> MessageView:
        _check_content(content)
        now = self._clock()
        async with self._uow.transaction() as work:
            conn = work.conn
            await self._member(work, conversation_id, user_id)
            message = await self._store.lock_message(conn, conversation_id, message_id)
            if message is None:
                raise NotFound("No such message")
            if message.sender_id != user_id:
                raise Forbidden("Only the sender edits a message")
            if message.deleted_at is not None:
                raise Conflict("The message was deleted")
            in_mongo = len(content.encode()) > self._inline_body_bytes
            if in_mongo:
                await self._bodies.put(message_id, content)
            change_seq = await self._changes.next_seq(conn, conversation_id)
            edited = await self._store.edit_message(
                conn,
                message_id,
                content=None if in_mongo else content,
                body_in_mongo=in_mongo,
                at=now,
                change_seq=change_seq,
            )
            view = _message_view(edited, content)
            members = await self._store.member_ids(conn, conversation_id)
            updated = MessageUpdated(message=view, recipient_ids=members)
            await self._changes.keep(conn, conversation_id, updated, now)
            work.emit(updated)
        if message.body_in_mongo and not in_mongo:
            await self._bodies.delete(message_id)
        return view

    async def delete(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> None:
        now = self._clock()
        async with self._uow.transaction() as work:
            conn = work.conn
            membership = await self._member(work, conversation_id, user_id)
            message = await self._store.lock_message(conn, conversation_id, message_id)
            if message is None:
                raise NotFound("No such message")
            if not can_delete(message, user_id, membership.role):
                raise Forbidden("Only the sender or an owner or admin deletes a message")
            if message.deleted_at is not None:
                # Deleted already: a retried delete removes a body whose removal failed then.
                await self._bodies.delete(message_id)
                return
            change_seq = await self._changes.next_seq(conn, conversation_id)
            await self._store.tombstone_message(conn, message_id, now, change_seq)
            if message.edited_at is not None:  # its edits in the change log hold its text
                await self._changes.forget_edits(conn, conversation_id, message_id, now)
            members = await self._store.member_ids(conn, conversation_id)
            event = MessageDeleted(
                conversation_id=conversation_id,
                message_id=message_id,
                seq=message.seq,
                deleted_by=user_id,
                deleted_at=now,
                recipient_ids=members,
                change_seq=change_seq,
            )
            await self._changes.keep(conn, conversation_id, event, now)
            work.emit(event)
        if message.body_in_mongo:
            await self._bodies.delete(message_id)

    async def mark_read(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, seq: int
    ) -> ReadResponse:
        now = self._clock()
        async with self._uow.transaction() as work:
            marker = await self._store.read_marker(work.conn, conversation_id, user_id)
            if marker is None:
                raise NotFound(NO_CONVERSATION)
            read_seq = advanced_read_seq(marker, seq)
            moved = read_seq > marker.last_read_seq
            if moved:
                await self._store.move_read_marker(work.conn, conversation_id, user_id, read_seq)
            # Read markers are shared only by who has taken part (an unsolicited sender does
            # not learn that it was read).
            if moved and marker.engaged:
                await self._change(
                    work,
                    conversation_id,
                    now,
                    MessageRead(
                        conversation_id=conversation_id,
                        user_id=user_id,
                        seq=read_seq,
                        read_at=now,
                    ),
                )
        return ReadResponse(last_read_seq=read_seq, unread_count=unread(marker.last_seq, read_seq))

    async def accept(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
        """The user takes part without writing (a conversation someone else opened)."""
        async with self._uow.transaction() as work:
            await self._member(work, conversation_id, user_id)
            if await self._store.engage(work.conn, conversation_id, [user_id]):
                work.emit(
                    ConversationEngaged(
                        conversation_id=conversation_id, user_id=user_id, at=self._clock()
                    )
                )

    async def set_notification_level(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        chosen: NotificationLevel | None,
    ) -> NotificationLevelResponse:
        """The caller's level for this conversation (``None``: the conversation's default)."""
        async with self._uow.transaction() as work:
            kind = await self._store.set_notification_level(
                work.conn, conversation_id, user_id, chosen
            )
        if kind is None:
            raise NotFound(NO_CONVERSATION)
        return NotificationLevelResponse(
            level=notification_level(kind, chosen), is_default=chosen is None
        )

    # --- users replica ------------------------------------------------------------------

    async def remember_user(
        self, conn: Any, user_id: uuid.UUID, username: str, display_name: str, at: datetime
    ) -> None:
        """In the consumer's transaction on ``conn``."""
        await self._users.upsert_user(conn, user_id, username, display_name, at)

    async def forget_user(self, conn: Any, user_id: uuid.UUID, at: datetime) -> None:
        """A deleted account: a tombstone in the directory, out of every group (handing
        ownership on), its blocks gone. Direct conversations keep its past messages. In the
        consumer's transaction on ``conn``, its events with it."""
        async with self._uow.joining(conn) as work:
            await self._people.mark_deleted(conn, user_id, at)
            for conversation_id in await self._people.groups_of(conn, user_id):
                await self._remove_member(work, conversation_id, user_id, user_id, at)

    async def set_role(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        member_id: uuid.UUID,
        role: MemberRole,
    ) -> ConversationView:
        """An owner grants or revokes admin, or hands ownership over (becoming an admin)."""
        now = self._clock()
        async with self._uow.transaction() as work:
            conn = work.conn
            membership = await self._member(work, conversation_id, user_id)
            if membership.conversation.type == "direct":
                raise Conflict("A direct conversation has no roles")
            current = await self._store.role_of(conn, conversation_id, member_id)
            if current is None:
                raise NotFound("Not a participant")
            if membership.role != "owner":
                raise Forbidden("Only an owner changes roles")
            if member_id == user_id:
                if role != "owner":
                    raise Conflict("Hand ownership to someone else instead")
                return await self._view_of(work, user_id, conversation_id)
            if current == "owner":
                raise Forbidden("An owner's role is theirs to hand over")
            changes = [(member_id, role)] if role != current else []
            if role == "owner":
                changes.append((user_id, "admin"))
            for changed_id, new_role in changes:
                await self._store.set_role(conn, conversation_id, changed_id, new_role)
                await self._change(
                    work,
                    conversation_id,
                    now,
                    (
                        ConversationMemberUpdated(
                            conversation_id=conversation_id,
                            user_id=changed_id,
                            role=new_role,
                            by=user_id,
                            at=now,
                        )
                    ),
                )
            return await self._view_of(work, user_id, conversation_id)

    async def changes(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, after: int, limit: int
    ) -> ChangePage:
        async with self._uow.reading() as work:
            await self._member(work, conversation_id, user_id)
            found = await self._changes.after(work.conn, conversation_id, after, limit + 1)
        page = found[:limit]
        return ChangePage(
            changes=page,
            last_change_seq=page[-1].change_seq if page else after,
            has_more=len(found) > limit,
        )

    async def _remove_member(
        self,
        work: Work,
        conversation_id: uuid.UUID,
        removed_id: uuid.UUID,
        by: uuid.UUID,
        now: datetime,
    ) -> None:
        """Out of the group; a group is never left without an owner: the owner leaving hands
        it on (a role change of its own)."""
        removed_role = await self._store.remove_participant(work.conn, conversation_id, removed_id)
        await self._change(
            work,
            conversation_id,
            now,
            ConversationMemberRemoved(
                conversation_id=conversation_id,
                user_id=removed_id,
                by=by,
                at=now,
            ),
        )
        if removed_role != "owner":  # a group has one owner: it still has it
            return
        promoted = next_owner(await self._store.participants(work.conn, [conversation_id]))
        if promoted is not None:
            await self._store.set_role(work.conn, conversation_id, promoted, "owner")
            await self._change(
                work,
                conversation_id,
                now,
                ConversationMemberUpdated(
                    conversation_id=conversation_id,
                    user_id=promoted,
                    role="owner",
                    by=by,
                    at=now,
                ),
            )

    async def _change(
        self,
        work: Work,
        conversation_id: uuid.UUID,
        at: datetime,
        change: NumberedChange,
    ) -> None:
        """A change numbered, kept in the change log and published, in the caller's
        transaction."""
        work.emit(await self._changes.record(work.conn, conversation_id, at, change))

    async def _learn_missing(self, token: str, user_ids: list[uuid.UUID]) -> None:
        """Users auth has issued but whose event has not arrived yet (``UserDirectory``). If
        auth cannot be asked, the directory decides as it stands."""
        try:
            await self._directory.learn_missing(token, user_ids)
        except PeerUnavailableError as error:
            _log.warning("user_lookup_failed", error=str(error))

    async def _check_reachable(
        self, work: Work, user_id: uuid.UUID, others: list[uuid.UUID], field: str
    ) -> None:
        """Invalid unless each of ``others`` exists and no block stands between them and the
        user. Who blocked the user reads as unknown: a block is not announced to the blocked."""
        wanted = list(dict.fromkeys(others))
        blocked, blocking = await self._people.barred(work.conn, user_id, wanted)
        unknown = (set(wanted) - await self._users.known_users(work.conn, wanted)) | blocking
        if unknown:
            raise InvalidInput([FieldError(field, f"unknown users: {sorted(map(str, unknown))}")])
        if blocked:
            raise InvalidInput(
                [FieldError(field, f"you blocked: {sorted(map(str, blocked))}; unblock first")]
            )

    async def remember_avatar(
        self, conn: Any, user_id: uuid.UUID, media_id: uuid.UUID | None, at: datetime
    ) -> None:
        """In the consumer's transaction on ``conn``."""
        if not await self._people.set_avatar(conn, user_id, media_id, at):
            raise UserNotYetKnownError(f"user {user_id} has not reached the directory yet")

    # --- views --------------------------------------------------------------------------

    async def _member(
        self, work: Work, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> Membership:
        membership = await self._store.membership(work.conn, conversation_id, user_id)
        if membership is None:
            raise NotFound(NO_CONVERSATION)
        return membership

    async def _view(self, message: StoredMessage) -> MessageView:
        [view] = await self._views([message])
        return view

    async def _views(self, messages: list[StoredMessage]) -> list[MessageView]:
        bodies = await self._bodies.get_many([m.id for m in messages if m.body_in_mongo])
        return [
            _message_view(m, bodies.get(m.id) if m.body_in_mongo else m.content) for m in messages
        ]

    async def _conversation_views(
        self, work: Work, memberships: list[Membership], viewer: uuid.UUID
    ) -> list[ConversationView]:
        conn = work.conn
        ids = [m.conversation.id for m in memberships]
        participants = await self._store.participants(conn, ids)
        with_messages = [m.conversation for m in memberships if m.conversation.last_seq > 0]
        last = await self._store.messages_at(
            conn, [c.id for c in with_messages], [c.last_seq for c in with_messages]
        )
        last_views = {view.conversation_id: view for view in await self._views(last)}
        heads = await self._changes.heads(conn, ids)
        return [
            ConversationView(
                id=m.conversation.id,
                type="direct" if m.conversation.type == "direct" else "group",
                title=m.conversation.title,
                created_by=m.conversation.created_by,
                created_at=m.conversation.created_at,
                last_activity_at=m.conversation.last_activity_at,
                last_seq=m.conversation.last_seq,
                participants=[
                    Participant(
                        user_id=p.user_id,
                        role="owner"
                        if p.role == "owner"
                        else "admin"
                        if p.role == "admin"
                        else "member",
                        joined_at=p.joined_at,
                        # Shared only by who has taken part; everyone sees their own.
                        last_read_seq=p.last_read_seq if p.engaged or p.user_id == viewer else 0,
                        username=p.username,
                        display_name=p.display_name,
                    )
                    for p in participants
                    if p.conversation_id == m.conversation.id
                ],
                last_message=last_views.get(m.conversation.id),
                unread_count=unread(m.conversation.last_seq, m.last_read_seq),
                notification_level=notification_level(m.conversation.type, m.notify),
                last_change_seq=heads.get(m.conversation.id, 0),
            )
            for m in memberships
        ]


def _message_view(message: StoredMessage, content: str | None) -> MessageView:
    return MessageView(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        content=None if message.deleted_at is not None else content,
        client_message_id=message.client_message_id,
        attachments=message.attachments,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted_at=message.deleted_at,
        change_seq=message.change_seq,
    )


@dataclass(slots=True)
class _SendBatch:
    """What one ``send_all_in`` has locked, found and decided so far."""

    locked: dict[uuid.UUID, LockedConversation]
    stored: dict[tuple[uuid.UUID, str], StoredMessage]  # by (sender, clientMessageId)
    messages: list[StoredMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _last_seq: dict[uuid.UUID, int] = field(default_factory=dict)

    def next_seq(self, conversation_id: uuid.UUID) -> int:
        seq = self._last_seq.get(conversation_id, self.locked[conversation_id].last_seq) + 1
        self._last_seq[conversation_id] = seq
        return seq

    def add(self, key: tuple[uuid.UUID, str], message: StoredMessage, events: list[Event]) -> None:
        if message.client_message_id is not None:
            self.stored[key] = message  # a repeat later in the batch is answered with it
        self.messages.append(message)
        self.events += events


def _answer_to_sender(
    command: SendCommand, outcome: Sent | Refusal
) -> MessageRefused | MessageAlreadyStored:
    if isinstance(outcome, Refusal):
        return _refusal(command, outcome)
    return MessageAlreadyStored(message=outcome.message)


def refusal_code(refusal: Refusal) -> RefusalCode:
    """How ``message.refused`` names a refusal to the sender's client."""
    if isinstance(refusal, Forbidden):
        return "forbidden"
    if isinstance(refusal, NotFound):
        return "not_found"
    if isinstance(refusal, Conflict):
        return "conflict"
    return "invalid"


def _refusal(command: SendCommand, refusal: Refusal) -> MessageRefused:
    reasons = [f"{e.field}: {e.message}" for e in refusal.errors or []]
    return MessageRefused(
        conversation_id=command.conversation_id,
        sender_id=command.sender_id,
        client_message_id=command.client_message_id or "",
        code=refusal_code(refusal),
        detail="; ".join(reasons or [refusal.detail])[:500],
    )


def _refused_text(command: SendCommand) -> Refusal | None:
    try:
        _check_content(command.content)
        _check_text("clientMessageId", command.client_message_id)
    except Refusal as refusal:
        return refusal
    return None


def _checked_title(title: str | None) -> str | None:
    """The title as stored (NFKC); invalid if it only deceives (``display_text``)."""
    if title is None:
        return None
    normalized = normalized_name(title)
    if (problem := name_problem(normalized)) is not None:
        raise InvalidInput([FieldError("title", problem)])
    return normalized


def _check_content(content: str) -> None:
    """Control characters (NUL included) and text with nothing visible are refused."""
    if (problem := message_problem(content)) is not None:
        raise InvalidInput([FieldError("content", problem)])


def _check_text(field: str, text: str | None) -> None:
    """Postgres text cannot hold NUL: refuse it as invalid input instead of failing later."""
    if text is not None and "\x00" in text:
        raise InvalidInput([FieldError(field, "must not contain NUL characters")])


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        return parse_time_cursor(cursor)
    except ValueError:
        raise InvalidInput([FieldError("cursor", "is not a cursor this API gave")]) from None
