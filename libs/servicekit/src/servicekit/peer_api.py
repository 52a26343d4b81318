"""Another service's REST API, called on a user's behalf with the user's own token.

Services own their data; where one needs to read another's at once (the gateway placing a
socket, chat resolving a user it has not heard of yet, auth checking an avatar), it asks the
owner with the caller's token, so the owner's authorization applies unchanged: a 404 means the
user may not see it (or it does not exist), and anything else unexpected is the peer's fault.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp


class PeerUnavailableError(RuntimeError):
    """The peer did not answer as expected: unreachable, or a status other than 200 and 404."""


class PeerApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, name: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._name = name

    async def get_as(
        self, token: str, path: str, params: Mapping[str, str] | None = None
    ) -> bytes | None:
        """The 200 body of ``GET path`` as the bearer of ``token``; None for a 404."""
        try:
            async with self._session.get(
                self._base + path,
                params=dict(params or {}),
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise PeerUnavailableError(
                        f"{self._name} answered {response.status} for {path}"
                    )
                return await response.read()
        except aiohttp.ClientError as error:
            raise PeerUnavailableError(f"{self._name} unreachable: {error!r}") from error
