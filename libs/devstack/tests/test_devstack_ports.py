"""Ports for servers that restart lie below the kernel's ephemeral range, free when handed out."""

from __future__ import annotations

import socket

from devstack.isolation import EPHEMERAL_RANGE, server_port


def test_a_server_port_is_free_and_never_one_the_kernel_hands_to_outgoing_connections() -> None:
    first_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    for _ in range(20):
        port = server_port()
        assert 10000 <= port < first_ephemeral
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
