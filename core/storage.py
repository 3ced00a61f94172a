"""Where job inputs and results live: a local directory, or an S3-compatible bucket for workers on
other hosts. Keys look like ``jobs/<id>/result.npy``; callers use the ``Storage`` interface and never
care which backend they have.

Keys are always built by Restora (``input_key``, ``result_key``), never from a client's file name.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.settings import Settings

CHUNK_BYTES = 1 << 20


class StorageError(Exception):
    """Storage could not be reached or written (the API answers 503)."""


def input_key(job_id: str, suffix: str) -> str:
    return f"jobs/{job_id}/input{suffix}"


def result_key(job_id: str, fmt: str) -> str:
    return f"jobs/{job_id}/result.{fmt}"


def segment_key(job_id: str, index: int, fmt: str) -> str:
    """A restored segment of a split video, kept until the segments are joined (or the job expires)."""
    return f"jobs/{job_id}/segments/{index:05d}.{fmt}"


@dataclass
class StoredFile:
    """A stored file opened for streaming: its size and its bytes in chunks (closed when exhausted)."""

    size: int
    chunks: Iterator[bytes]


class Storage(Protocol):
    def put(self, key: str, src: Path) -> None:
        """Move the local file ``src`` in under ``key`` (``src`` is gone afterwards)."""

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> StoredFile:
        """Raises ``FileNotFoundError`` when there is no such key."""

    def local_copy(self, key: str, work_dir: Path) -> Path:
        """A local path with the file's content, inside ``work_dir`` unless the file is already local."""

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...


class LocalStorage:
    """A directory tree. ``put`` moves files in atomically, so readers never see half a file."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    def put(self, key: str, src: Path) -> None:
        dst = self.path(key)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".part")
            shutil.move(src, tmp)
            tmp.replace(dst)
        except OSError as exc:
            raise StorageError(f"cannot store {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> StoredFile:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return StoredFile(path.stat().st_size, _file_chunks(path))

    def local_copy(self, key: str, work_dir: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph...). Credentials and region come from boto3's usual
    sources (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, roles)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, src: Path) -> None:
        with _s3_errors("store", key):
            self.s3.upload_file(str(src), self.bucket, self._key(key))
        Path(src).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        try:
            with _s3_errors("read", key):
                self.s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except FileNotFoundError:
            return False
        return True

    def open(self, key: str) -> StoredFile:
        with _s3_errors("read", key):
            answer = self.s3.get_object(Bucket=self.bucket, Key=self._key(key))
        return StoredFile(answer["ContentLength"], _closing_chunks(answer["Body"]))

    def local_copy(self, key: str, work_dir: Path) -> Path:
        dest = Path(work_dir) / Path(key).name
        with _s3_errors("read", key):
            self.s3.download_file(self.bucket, self._key(key), str(dest))
        return dest

    def delete(self, key: str) -> None:
        with _s3_errors("delete", key):
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> None:
        """Everything under the folder ``prefix`` (``jobs/a`` never touches ``jobs/ab/...``)."""
        folder = self._key(prefix.rstrip("/") + "/")
        with _s3_errors("delete", prefix):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})


@contextmanager
def _s3_errors(action: str, key: str) -> Iterator[None]:
    """A missing object becomes ``FileNotFoundError``; anything else the bucket says, ``StorageError``."""
    try:
        yield
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            raise FileNotFoundError(key) from None
        raise StorageError(f"cannot {action} {key}: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"cannot {action} {key}: {exc}") from exc


def _closing_chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


USAGE_TOTAL_KEY = "restora:storage:bytes"  # every stored file's bytes, summed


def _usage_key(key: str) -> str:
    """Redis hash of one folder's (one job's) stored files -> their sizes: a job's files are forgotten in one go."""
    return f"restora:storage:folder:{key.rsplit('/', 1)[0]}"


class AccountedStorage:
    """A storage whose every stored file is counted in Redis (a running total, and sizes per job
    folder to take back off when a job's files go), so the API can cap the space in use
    (``RESTORA_MAX_STORAGE_GB``) across API replicas and workers on any host, S3 included."""

    def __init__(self, inner: Storage, client: redis.Redis):
        self.inner, self.redis = inner, client

    def put(self, key: str, src: Path) -> None:
        size = Path(src).stat().st_size
        self.inner.put(key, src)
        replaced = int(self.redis.hget(_usage_key(key), key) or 0)  # a retried job stores its result again
        with self.redis.pipeline() as pipe:
            pipe.hset(_usage_key(key), key, size)
            pipe.incrby(USAGE_TOTAL_KEY, size - replaced)
            pipe.execute()

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def open(self, key: str) -> StoredFile:
        return self.inner.open(key)

    def local_copy(self, key: str, work_dir: Path) -> Path:
        return self.inner.local_copy(key, work_dir)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        size = int(self.redis.hget(_usage_key(key), key) or 0)
        with self.redis.pipeline() as pipe:
            pipe.hdel(_usage_key(key), key)
            pipe.decrby(USAGE_TOTAL_KEY, size)
            pipe.execute()

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)
        folder = _usage_key(prefix.rstrip("/") + "/")
        sizes = self.redis.hvals(folder)
        with self.redis.pipeline() as pipe:
            pipe.delete(folder)
            pipe.decrby(USAGE_TOTAL_KEY, sum(int(v) for v in sizes))
            pipe.execute()


def bytes_in_use(client: redis.Redis) -> int:
    return int(client.get(USAGE_TOTAL_KEY) or 0)


def get_storage(settings: Settings, client: redis.Redis | None = None) -> Storage:
    """``s3://bucket[/prefix]`` gives an ``S3Storage``; anything else local storage. With a Redis
    ``client``, every stored file is counted (:class:`AccountedStorage`)."""
    if settings.storage_url and settings.storage_url.startswith("s3://"):
        url = urlsplit(settings.storage_url)
        storage: Storage = S3Storage(url.netloc, url.path, settings.s3_endpoint_url or None)
    else:
        storage = LocalStorage(settings.storage_root)
    return AccountedStorage(storage, client) if client is not None else storage
