"""The fault scenarios of ``make chaos``, in the order they run: each injects its faults while
the load runs, then the load stops and the audit runs (docs/reliability.md).

``scenario`` says what a scenario is and what it records, ``measure`` what scenarios measure of
the fleet; each of the other modules holds the scenarios of one kind of fault: ``broker`` (1, 8),
``databases`` (2, 6), ``redis_emptied`` (3), ``processes`` (4, 5), ``slow_reader`` (7) and
``handshake_storm`` (9).
"""

from __future__ import annotations

import dataclasses

from chaos.scenarios.broker import broker_stopped_then_killed, poison_in_every_queue
from chaos.scenarios.databases import mongo_killed, postgres_crashed
from chaos.scenarios.handshake_storm import handshake_storm
from chaos.scenarios.processes import chat_and_worker_killed, gateway_killed
from chaos.scenarios.redis_emptied import redis_restarted_empty
from chaos.scenarios.scenario import Scenario
from chaos.scenarios.slow_reader import slow_reader_in_a_busy_room

SCENARIOS = (
    Scenario(1, "RabbitMQ stopped, started, then SIGKILLed", broker_stopped_then_killed),
    Scenario(2, "PostgreSQL stopped -m immediate during sends", postgres_crashed),
    Scenario(3, "Redis restarted with nothing kept", redis_restarted_empty),
    Scenario(4, "chat SIGKILLed mid-batch, a worker mid-message", chat_and_worker_killed),
    Scenario(5, "a gateway SIGKILLed with clients on it", gateway_killed),
    Scenario(
        6,
        "the MongoDB stand-in SIGKILLed",
        mongo_killed,
        load_shape=lambda shape: dataclasses.replace(shape, large_every=4),
    ),
    Scenario(7, "a socket that never reads, in a busy room", slow_reader_in_a_busy_room),
    Scenario(8, "poison messages in every queue", poison_in_every_queue),
    Scenario(9, "a handshake storm and an oversize frame", handshake_storm),
)
FAST_SUBSET = (1, 4, 5, 8)
