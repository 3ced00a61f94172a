"""Where job inputs and results live. Local disk by default; keys look like ``jobs/<id>/result.npy``.

Keys are always built by Restora (``input_key``, ``result_key``), never from a client's file name.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from core.settings import Settings


class StorageError(Exception):
    """Storage could not be reached or written (the API answers 503)."""


def input_key(job_id: str, suffix: str) -> str:
    return f"jobs/{job_id}/input{suffix}"


def result_key(job_id: str, fmt: str) -> str:
    return f"jobs/{job_id}/result.{fmt}"


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

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


def get_storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.storage_root)
