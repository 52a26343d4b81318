"""Where uploaded bytes live: a key-value blob store with atomic writes.

:class:`BlobStore` is the interface services program against; :class:`FilesystemBlobStore` keeps
blobs as files under one root directory (``MEDIA_ROOT``). An S3-compatible backend fits the same
interface: ``open_writer`` maps to a multipart upload completed on ``commit`` and aborted on
``abort``, ``put`` to one PUT, ``get`` to GET, ``delete`` to DELETE.

Writes are atomic: bytes go to a temporary file in ``<root>/.incoming`` (the same filesystem as
the blobs), are flushed and fsynced, then renamed over the key. A reader sees the old blob or the
new one, never a half-written file; a process killed mid-write leaves at most a temporary file,
which no key ever names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Protocol

INCOMING_DIR = ".incoming"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class BlobNotFoundError(LookupError):
    """No blob is stored under the key."""


class BlobWriter(Protocol):
    """An open, not yet visible write of one blob."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    async def write(self, chunk: bytes) -> None: ...


class BlobStore(Protocol):
    def open_writer(self, key: str) -> contextlib.AbstractAsyncContextManager[BlobWriter]:
        """Stream a blob in; it becomes visible under ``key`` only when the block exits
        normally. An exception in the block discards everything written."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically, replacing what was there."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole blob; raises :class:`BlobNotFoundError`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def probe(self) -> None:
        """Raise unless the store can take writes now (a readiness check)."""
        ...


def check_key(key: str) -> str:
    """Keys are relative, slash-separated names of safe characters: never ``..``, never absolute,
    never a hidden name (the store's own temporary directory is hidden)."""
    if not _KEY.fullmatch(key) or len(key) > 1024:
        raise ValueError(f"not a blob key: {key!r}")
    return key


class _FileWriter:
    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._file.write, chunk)
        self.size += len(chunk)


class FilesystemBlobStore:
    """Blobs as files under ``root``; blocking file work runs in a thread, off the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._incoming = self.root / INCOMING_DIR

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    @asynccontextmanager
    async def open_writer(self, key: str) -> AsyncIterator[BlobWriter]:
        target = self.path_of(key)
        temp, file = await asyncio.to_thread(self._open_temp)
        try:
            writer = _FileWriter(file)
            yield writer
            await asyncio.to_thread(_finish, file, temp, target)
        except BaseException:
            await asyncio.to_thread(_discard, file, temp)
            raise

    async def put(self, key: str, data: bytes) -> None:
        async with self.open_writer(key) as writer:
            await writer.write(data)

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def probe(self) -> None:
        await asyncio.to_thread(self._check_writable)

    def incoming_files(self) -> list[Path]:
        """Temporary files of writes in progress (or of a process killed mid-write)."""
        if not self._incoming.is_dir():
            return []
        return sorted(self._incoming.iterdir())

    def _check_writable(self) -> None:
        self._incoming.mkdir(parents=True, exist_ok=True)
        if not os.access(self._incoming, os.W_OK | os.X_OK):
            raise PermissionError(f"{self._incoming} is not writable")

    def _open_temp(self) -> tuple[Path, IO[bytes]]:
        self._incoming.mkdir(parents=True, exist_ok=True)
        temp = self._incoming / f"{secrets.token_hex(12)}.part"
        # Exclusive create: two writers never share a temporary file.
        return temp, temp.open("xb")


def _finish(file: IO[bytes], temp: Path, target: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    # rename(2) replaces the target atomically on one filesystem; fsync of the directory makes
    # the new name survive a power cut.
    temp.replace(target)
    _fsync_directory(target.parent)


def _discard(file: IO[bytes], temp: Path) -> None:
    with contextlib.suppress(OSError):
        file.close()
    temp.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
