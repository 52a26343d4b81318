"""The filesystem blob store: atomic writes (never a half-written blob), safe keys, and the
image type sniffing that decides what chat accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from servicekit.blob_store import BlobNotFoundError, FilesystemBlobStore, check_key
from servicekit.image_types import sniff_image_type


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "media")


async def test_put_get_replace_and_delete(store: FilesystemBlobStore) -> None:
    await store.put("media/ab/one", b"first")
    assert await store.get("media/ab/one") == b"first"
    await store.put("media/ab/one", b"second")
    assert await store.get("media/ab/one") == b"second"
    assert await store.exists("media/ab/one")
    await store.delete("media/ab/one")
    await store.delete("media/ab/one")  # already gone: fine
    assert not await store.exists("media/ab/one")
    with pytest.raises(BlobNotFoundError):
        await store.get("media/ab/one")
    assert store.incoming_files() == []


async def test_a_streamed_write_is_invisible_until_it_completes(
    store: FilesystemBlobStore,
) -> None:
    async with store.open_writer("media/cd/two") as writer:
        await writer.write(b"abc")
        await writer.write(b"def")
        assert writer.size == 6
        assert not await store.exists("media/cd/two")
        assert len(store.incoming_files()) == 1
    assert await store.get("media/cd/two") == b"abcdef"
    assert store.incoming_files() == []


async def test_a_failed_write_leaves_the_old_blob_and_no_temporary_file(
    store: FilesystemBlobStore,
) -> None:
    await store.put("media/ef/three", b"old")

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        async with store.open_writer("media/ef/three") as writer:
            await writer.write(b"half of the n")
            raise Interrupted
    assert await store.get("media/ef/three") == b"old"
    assert store.incoming_files() == []


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "media/../../x", ".incoming/x", "a//b", "a/ b"]
)
def test_unsafe_keys_are_refused(store: FilesystemBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        check_key(key)
    with pytest.raises(ValueError, match="not a blob key"):
        store.path_of(key)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "image/png"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00", "image/gif"),
        (b"GIF87a\x01\x00\x01\x00\x00\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00", None),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", None),
        (b"<svg xmlns='http", None),
        (b"\x89PN", None),
        (b"", None),
    ],
)
def test_image_types_are_decided_by_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_image_type(head) == expected


async def test_the_probe_fails_when_the_store_cannot_take_writes(tmp_path: Path) -> None:
    await FilesystemBlobStore(tmp_path / "fresh").probe()  # created on demand
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OSError, match="file"):
        await FilesystemBlobStore(blocker).probe()
