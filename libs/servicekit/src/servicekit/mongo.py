"""MongoDB through PyMongo's ``AsyncMongoClient`` (Motor is end-of-life)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.http_app import add_readiness_check
from servicekit.settings import MongoSettings

Document = dict[str, Any]
MongoDatabase = AsyncDatabase[Document]


def create_mongo_client(settings: MongoSettings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.url,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5000,
        appname="chat-fleet",
    )


def mongo_resource(
    key: web.AppKey[MongoDatabase], settings: MongoSettings
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """A ``cleanup_ctx`` entry owning the app's MongoDB client and database handle."""

    @asynccontextmanager
    async def resource(app: web.Application) -> AsyncIterator[None]:
        client = create_mongo_client(settings)
        database = client[settings.database]
        app[key] = database
        add_readiness_check(app, "mongodb", lambda: database.command("ping"))
        try:
            yield
        finally:
            await client.close()

    return resource
