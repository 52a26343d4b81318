"""The Mongo wire stand-in runs as its own process, speaks to PyMongo and stops cleanly."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from devstack.mongo_standin import MongoStandinError, start_mongo_standin


async def test_pymongo_round_trip_unique_index_and_clean_stop() -> None:
    standin = start_mongo_standin()
    assert standin.url.startswith("mongodb://127.0.0.1:")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(standin.url)
    try:
        users = client[f"t_{uuid.uuid4().hex}"]["users"]
        await users.create_index("email", unique=True)
        await users.insert_one({"email": "ada@example.com", "name": "Ada"})
        found = await users.find_one({"email": "ada@example.com"}, {"_id": 0})
        assert found == {"email": "ada@example.com", "name": "Ada"}
        with pytest.raises(DuplicateKeyError):
            await users.insert_one({"email": "ada@example.com", "name": "Impostor"})
        assert await users.count_documents({}) == 1
    finally:
        await client.close()
        exit_code = standin.stop()
    assert exit_code == 0
    assert standin.process.returncode == 0


def test_sqlite_standin_logs_that_it_is_not_mongodb(tmp_path: Path) -> None:
    log = tmp_path / "mongo.log"
    process = start_mongo_standin(engine="sqlite", path=tmp_path / "data.sqlite", log_file=log)
    try:
        os.kill(process.pid, signal.SIGINT)  # Ctrl-C in a terminal stops it as cleanly
        assert process.process.wait(10) == 0
    finally:
        process.stop()
    assert "NOT A REAL MONGODB" in log.read_text()


def test_a_process_that_dies_reports_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(
        MongoStandinError, match=r"(?s)exited with code 2.*--path needs --engine sqlite"
    ):
        start_mongo_standin(path=tmp_path / "x.sqlite")
