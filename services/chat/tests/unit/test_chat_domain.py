"""Chat's rules without I/O: direct-pair keys, who manages and deletes, unread counts, and the
shapes the API accepts."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from chat.api import (
    MAX_SEQ,
    CreateConversationRequest,
    MessagesQuery,
    ReadRequest,
    SendMessageRequest,
)
from chat.domain import (
    StoredMessage,
    can_delete,
    can_manage,
    direct_key,
    mentioned_usernames,
    unread,
)
from servicekit.display_text import message_problem
from servicekit.problems import ProblemError
from servicekit.request_body import decode_json, read_query

SENDER = uuid.UUID("00000000-0000-0000-0000-000000000001")
OTHER = uuid.UUID("00000000-0000-0000-0000-000000000002")


def message(sender: uuid.UUID = SENDER) -> StoredMessage:
    return StoredMessage(
        id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        seq=1,
        sender_id=sender,
        client_message_id=None,
        content="hi",
        body_in_mongo=False,
        attachments=[],
        created_at=datetime.now(UTC),
        edited_at=None,
        deleted_at=None,
    )


def test_a_direct_key_is_the_same_for_both_orders_of_a_pair() -> None:
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert direct_key(first, second) == direct_key(second, first)
    assert direct_key(first, second) != direct_key(first, third)
    low, high = sorted((str(first), str(second)))
    assert direct_key(second, first) == f"{low}:{high}"


@pytest.mark.parametrize(
    ("role", "manages"), [("owner", True), ("admin", True), ("member", False), ("guest", False)]
)
def test_only_owners_and_admins_manage(role: str, manages: bool) -> None:
    assert can_manage(role) is manages


@pytest.mark.parametrize(
    ("user", "role", "allowed"),
    [
        (SENDER, "member", True),
        (OTHER, "member", False),
        (OTHER, "admin", True),
        (OTHER, "owner", True),
    ],
)
def test_the_sender_or_a_manager_deletes(user: uuid.UUID, role: str, allowed: bool) -> None:
    assert can_delete(message(), user, role) is allowed


@pytest.mark.parametrize(
    ("last_seq", "last_read", "expected"), [(0, 0, 0), (5, 2, 3), (5, 5, 0), (3, 7, 0)]
)
def test_unread_counts_what_is_past_the_marker_never_below_zero(
    last_seq: int, last_read: int, expected: int
) -> None:
    assert unread(last_seq, last_read) == expected


@pytest.mark.parametrize("content", ["", "x" * 16001], ids=["empty", "too-long"])
def test_content_that_is_empty_or_too_long_is_refused(content: str) -> None:
    with pytest.raises(ProblemError) as refused:
        decode_json(msgspec.json.encode({"content": content}), SendMessageRequest)
    assert refused.value.status == 422
    assert [error.field for error in refused.value.errors or []] == ["content"]


@pytest.mark.parametrize("content", [" ", "\n\t ", "\u200b", "a\x00"])
def test_the_document_states_that_blank_or_control_text_is_refused(content: str) -> None:
    """The service refuses it (``message_problem``, 422 naming the field); the schema says so."""
    schema = msgspec.json.schema(SendMessageRequest)["$defs"]["SendMessageRequest"]
    assert re.fullmatch(schema["properties"]["content"]["pattern"], content) is None
    assert message_problem(content) is not None


def test_content_at_the_limit_and_padded_content_are_accepted() -> None:
    for content in ("x" * 16000, " a ", "日本語"):
        decoded = decode_json(msgspec.json.encode({"content": content}), SendMessageRequest)
        assert decoded.content == content
        assert decoded.attachments == []
        assert decoded.client_message_id is None


def test_a_create_request_is_camel_case_and_strict() -> None:
    raw = msgspec.json.encode({"participantIds": [str(OTHER)], "type": "group"})
    request = decode_json(raw, CreateConversationRequest)
    assert (request.participant_ids, request.type, request.title) == ([OTHER], "group", None)
    with pytest.raises(ProblemError) as refused:
        decode_json(
            msgspec.json.encode({"participant_ids": [str(OTHER)]}), CreateConversationRequest
        )
    assert refused.value.status == 422


def test_seqs_stay_within_what_postgres_stores() -> None:
    assert MAX_SEQ == 2**63 - 1
    assert decode_json(b'{"seq": 9223372036854775807}', ReadRequest).seq == MAX_SEQ
    for raw in (b'{"seq": 9223372036854775808}', b'{"seq": -1}'):
        with pytest.raises(ProblemError):
            decode_json(raw, ReadRequest)
    assert read_query({"after": "0", "limit": "100"}, MessagesQuery).after == 0
    for query in ({"before": "9223372036854775808"}, {"after": "-1"}, {"limit": "101"}):
        with pytest.raises(ProblemError):
            read_query(query, MessagesQuery)


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("hey @Bob", {"bob"}),
        ("@alice and @bob.", {"alice", "bob"}),
        ("@carol_1, @dave-x!", {"carol_1", "dave-x"}),
        ("mail bob@example.com", set()),
        ("@@bob", set()),
        ("(@bob)", {"bob"}),
        ("no mentions", set()),
        ("@", set()),
    ],
)
def test_mentions_are_at_usernames_lower_cased_and_not_e_mail_addresses(
    content: str, names: set[str]
) -> None:
    assert mentioned_usernames(content) == names
