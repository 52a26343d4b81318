"""What scenarios measure of the fleet from outside: delivery-time percentiles, a process's
memory, whether a handshake is accepted."""

from __future__ import annotations

import statistics
from pathlib import Path

import socketio


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def handshake_accepted(url: str, token: str) -> bool:
    """Whether a Socket.IO connect with ``token`` is accepted (then closed again)."""
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True
