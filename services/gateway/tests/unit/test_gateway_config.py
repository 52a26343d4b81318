"""The gateway's settings: which origins may open sockets, by environment."""

from __future__ import annotations

import pytest

from gateway.config import load_settings
from servicekit.settings import SettingsError

BASE = {"JWT_SECRET": "s" * 48}


@pytest.mark.parametrize("app_env", ["production", "test"])
def test_outside_development_the_origins_must_be_listed(app_env: str) -> None:
    for cors in ({}, {"SOCKET_IO_CORS": "*"}, {"SOCKET_IO_CORS": "https://a.test,*"}):
        with pytest.raises(SettingsError, match="SOCKET_IO_CORS"):
            load_settings({**BASE, "APP_ENV": app_env, **cors})
    listed = load_settings(
        {**BASE, "APP_ENV": app_env, "SOCKET_IO_CORS": "https://a.test, https://b.test"}
    )
    assert listed.cors_origins == ("https://a.test", "https://b.test")


def test_development_allows_any_origin_by_default() -> None:
    assert load_settings({**BASE, "APP_ENV": "development"}).cors_origins == "*"
