"""Streams a multipart upload to a staging file, enforcing the size cap while it arrives.

Starlette's own form parser spools without any cap, so ``POST /v1/jobs`` reads the raw body and
feeds python-multipart's streaming parser itself: the file part goes straight to disk and the
upload is refused with 413 as soon as it passes the limit (or at once, from Content-Length).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.validation import InvalidInput

FIELD_LIMIT = 4096  # bytes of one plain form field
PART_LIMIT = 16  # parts in one form
ENVELOPE_SLACK = 64 * 1024  # multipart boundaries and headers around the file


@dataclass
class Upload:
    filename: str
    path: Path
    size: int
    fields: dict[str, str] = field(default_factory=dict)


class _Collector:
    """python-multipart callbacks: the ``file`` part to disk, other parts to small strings."""

    def __init__(self, path: Path, max_bytes: int):
        self.path, self.max_bytes = path, max_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.size = 0
        self.parts = 0
        self._file = None
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, s, e: self._add_header_name(d[s:e]),
            "on_header_value": lambda d, s, e: self._add_header_value(d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": lambda d, s, e: self.data(d[s:e]),
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > PART_LIMIT:
            raise InvalidInput(400, f"too many form parts (more than {PART_LIMIT})")
        self._headers, self._name, self._value = {}, None, bytearray()

    def _add_header_name(self, data: bytes) -> None:
        self._header_name += data

    def _add_header_value(self, data: bytes) -> None:
        self._header_value += data

    def header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == "file":
            if self._file is not None:
                raise InvalidInput(400, "send exactly one 'file' part")
            self.filename = params.get(b"filename", b"").decode("utf-8", "replace")
            self._file = self.path.open("wb")

    def data(self, chunk: bytes) -> None:
        if self._name == "file":
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise InvalidInput(413, f"upload exceeds the limit of {self.max_bytes // 2**20} MB")
            self._file.write(chunk)
        else:
            self._value += chunk
            if len(self._value) > FIELD_LIMIT:
                raise InvalidInput(400, f"form field {self._name!r} is longer than {FIELD_LIMIT} bytes")

    def part_end(self) -> None:
        if self._name == "file":
            self._file.close()
        elif self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


async def receive_upload(request: Request, staging_dir: Path, max_bytes: int) -> Upload:
    """Parse the multipart body into a staging file. The caller owns (and must remove) ``path``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput(415, "send the upload as multipart/form-data with a 'file' field")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_SLACK:
        raise InvalidInput(413, f"upload of {int(declared) // 2**20} MB exceeds the limit of {max_bytes // 2**20} MB")
    staging_dir.mkdir(parents=True, exist_ok=True)
    path = staging_dir / uuid.uuid4().hex
    collector = _Collector(path, max_bytes)
    try:
        parser = MultipartParser(params[b"boundary"], collector.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        collector.close()
        path.unlink(missing_ok=True)
        raise InvalidInput(400, f"malformed multipart body: {exc}") from None
    except BaseException:
        collector.close()
        path.unlink(missing_ok=True)
        raise
    collector.close()
    if collector.filename is None:
        path.unlink(missing_ok=True)
        raise InvalidInput(400, "the form has no 'file' part")
    return Upload(filename=collector.filename or "upload", path=path, size=collector.size, fields=collector.fields)
