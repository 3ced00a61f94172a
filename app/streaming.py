"""Stored files as HTTP responses, streamed in chunks whichever storage holds them."""
from __future__ import annotations

from fastapi.responses import StreamingResponse

from core.storage import StoredFile


def stream_file(stored: StoredFile, media_type: str, filename: str, *, inline: bool = False) -> StreamingResponse:
    disposition = "inline" if inline else "attachment"
    headers = {"Content-Length": str(stored.size), "Content-Disposition": f'{disposition}; filename="{filename}"'}
    return StreamingResponse(stored.chunks, media_type=media_type, headers=headers)
