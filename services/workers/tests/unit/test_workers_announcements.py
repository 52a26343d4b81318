"""``AnnouncementPacer`` on a fake clock: what goes out at once, what is held, what is merged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts import make_envelope
from contracts.envelope import Envelope
from contracts.events import NotificationCreated
from devstack.waiting import until
from workers.announcements import AnnouncementPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def announcement(notification: uuid.UUID, count: int) -> Envelope[NotificationCreated]:
    return make_envelope(
        NotificationCreated(
            notification_id=notification,
            recipient_id=uuid.uuid4(),
            kind="message",
            conversation_id=uuid.uuid4(),
            message_id=uuid.uuid4(),
            preview=f"#{count}",
            count=count,
            created_at=datetime.now(UTC),
        ),
        producer="workers",
    )


@pytest.fixture
def sent() -> list[list[int]]:
    return []


def pacer(sent: list[list[int]], clock: Clock, interval: float = 10.0) -> AnnouncementPacer:
    async def publish(batch: list[Envelope[NotificationCreated]]) -> None:
        sent.append([e.data.count for e in batch])

    return AnnouncementPacer(publish, interval, clock=clock)


async def test_the_first_goes_at_once_and_a_burst_after_it_is_one_send_with_the_last(
    sent: list[list[int]],
) -> None:
    clock = Clock()
    paced = pacer(sent, clock)
    one, other = uuid.uuid4(), uuid.uuid4()
    await paced.announce([announcement(one, 1), announcement(other, 1)])
    for count in (2, 3, 4):
        clock.now += 1
        await paced.announce([announcement(one, count)])
    assert sent == [[1, 1]]
    clock.now += 10
    await paced.flush(due_only=True)
    assert sent == [[1, 1], [4]]


async def test_a_change_after_a_quiet_interval_goes_at_once(sent: list[list[int]]) -> None:
    clock = Clock()
    paced = pacer(sent, clock)
    one = uuid.uuid4()
    await paced.announce([announcement(one, 1)])
    clock.now += 11
    await paced.announce([announcement(one, 2)])
    assert sent == [[1], [2]]


async def test_held_announcements_are_sent_by_the_timer_and_on_close(
    sent: list[list[int]],
) -> None:
    clock = Clock()
    paced = pacer(sent, clock, interval=0.05)
    one, other = uuid.uuid4(), uuid.uuid4()
    await paced.announce([announcement(one, 1), announcement(other, 1)])
    await paced.announce([announcement(one, 2)])
    clock.now += 1  # the timer fires after the interval and finds it due
    await until(lambda: len(sent) == 2, timeout=2, interval=0.01)
    assert sent == [[1, 1], [2]]
    await paced.announce([announcement(other, 2)])
    await paced.close()  # a stopping consumer sends what it holds
    assert sent == [[1, 1], [2], [2]]


async def test_interval_zero_announces_every_change(sent: list[list[int]]) -> None:
    paced = pacer(sent, Clock(), interval=0.0)
    one = uuid.uuid4()
    for count in (1, 2, 3):
        await paced.announce([announcement(one, count)])
    assert sent == [[1], [2], [3]]


async def test_a_failed_held_send_is_logged_not_raised() -> None:
    clock = Clock()

    async def broken(batch: list[Envelope[NotificationCreated]]) -> None:
        raise ConnectionError("broker gone")

    paced = AnnouncementPacer(broken, 10.0, clock=clock)
    one = uuid.uuid4()
    with pytest.raises(ConnectionError):  # a send at once is the consumer's to retry
        await paced.announce([announcement(one, 1)])
    await paced.announce([announcement(one, 2)])
    await paced.close()  # held: best effort


async def test_counts_arriving_out_of_order_never_announce_a_lower_count_after_a_higher(
    sent: list[list[int]],
) -> None:
    clock = Clock()
    paced = pacer(sent, clock)
    one = uuid.uuid4()
    await paced.announce([announcement(one, 2)])  # concurrent handlers: 2 read back first
    await paced.announce([announcement(one, 1)])  # stale: dropped
    await paced.announce([announcement(one, 5)])
    await paced.announce([announcement(one, 4)])  # older than the held 5: the 5 stays
    clock.now += 10
    await paced.flush(due_only=True)
    assert sent == [[2], [5]]


async def test_a_redelivery_after_a_failed_send_is_announced(sent: list[list[int]]) -> None:
    clock = Clock()
    failing = True

    async def publish(batch: list[Envelope[NotificationCreated]]) -> None:
        if failing:
            raise ConnectionError("broker gone")
        sent.append([e.data.count for e in batch])

    paced = AnnouncementPacer(publish, 10.0, clock=clock)
    one = uuid.uuid4()
    with pytest.raises(ConnectionError):
        await paced.announce([announcement(one, 1)])
    failing = False
    clock.now += 11
    await paced.announce([announcement(one, 1)])  # the consumer's retry of the same event
    assert sent == [[1]]
