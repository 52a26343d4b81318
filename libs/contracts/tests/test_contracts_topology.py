"""Queue bindings and producers cover every routing key, with AMQP topic semantics."""

import pytest

from contracts import names, topology


@pytest.mark.parametrize(
    ("pattern", "routing_key", "expected"),
    [
        ("user.*", "user.registered", True),
        ("user.*", "user.registered.extra", False),
        ("user.*", "session.revoked", False),
        ("message.created", "message.created", True),
        ("message.created", "message.create", False),
        ("#", "message.created", True),
        ("message.#", "message", True),
        ("#.created", "conversation.member.created", True),
        ("*.created", "created", False),
    ],
)
def test_topic_matches(pattern: str, routing_key: str, expected: bool) -> None:
    assert topology.topic_matches(pattern, routing_key) is expected


def test_seed_queues_bind_the_documented_keys() -> None:
    bindings = {queue.name: queue.binding_keys for queue in topology.QUEUES}
    assert bindings[names.MESSAGES_QUEUE] == (names.MESSAGE_SEND,)
    # Only messages that notify someone reach the workers (docs/notifications.md), and the
    # edits and deletes that revise their previews.
    assert bindings[names.NOTIFICATIONS_QUEUE] == (
        names.NOTIFICATION_REQUESTED,
        names.MESSAGE_UPDATED,
        names.MESSAGE_DELETED,
        names.USER_DELETED,
    )
    assert bindings[names.MEDIA_QUEUE] == (names.MEDIA_UPLOADED,)


def test_every_routing_key_has_one_producer_and_a_consumer() -> None:
    patterns = [p for queue in topology.QUEUES for p in queue.binding_keys]
    patterns += topology.GATEWAY_BINDING_KEYS
    assert set(topology.PRODUCERS) == set(names.ROUTING_KEYS)
    for key in names.ROUTING_KEYS:
        assert any(topology.topic_matches(p, key) for p in patterns), key


def test_gateway_does_not_receive_its_own_commands_or_chats_requests_to_the_workers() -> None:
    for key in (names.MESSAGE_SEND, names.NOTIFICATION_REQUESTED):
        assert not any(topology.topic_matches(p, key) for p in topology.GATEWAY_BINDING_KEYS)


def test_derived_queue_names() -> None:
    assert names.dead_letter_queue(names.MESSAGES_QUEUE) == "messages.queue.dlq"
    assert names.retry_queue(names.MEDIA_QUEUE) == "media.queue.retry"
    assert names.gateway_queue("gw-1") == "gateway.gw-1.queue"


@pytest.mark.parametrize(
    ("routing_key", "durable"),
    [
        ("message.send", True),
        ("notification.requested", True),
        ("message.created", False),  # fanned out by the gateways; clients catch up with sync
        ("media.uploaded", True),
        ("user.registered", True),
        ("media.processed", True),
        ("session.revoked", True),  # push.queue: a signed-out session's devices go
        ("presence.online", False),
        ("message.read", False),
    ],
)
def test_durably_consumed_follows_the_durable_queue_bindings(
    routing_key: str, durable: bool
) -> None:
    assert topology.durably_consumed(routing_key) is durable
