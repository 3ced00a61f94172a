"""The web page at ``/`` and the input previews it compares results against."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse, StreamingResponse

from app.deps import JobDep, SettingsDep, StorageDep
from app.previews import input_preview
from app.schemas import error_responses
from app.streaming import stream_file
from models.formats import INPUT_MEDIA_TYPES

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

INPUT_EXAMPLES = {media: {"example": "(the uploaded bytes, or PNG bytes of the preview)"} for media in sorted(set(INPUT_MEDIA_TYPES.values()))}

router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get(
    "/v1/jobs/{job_id}/input",
    tags=["jobs"],
    summary="Download the input, or a PNG preview of it",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The uploaded file as stored (`original`), or a PNG preview (`png`)",
            "content": INPUT_EXAMPLES,
        },
        **error_responses(401, 404, 410, 422, 503),
    },
)
def get_input(
    job: JobDep,
    storage: StorageDep,
    settings: SettingsDep,
    format: Annotated[Literal["original", "png"], Query(description="`original`: the uploaded bytes; `png`: the first frame (stack, video) or the image, stretched to 8 bits like the result's png")] = "original",
) -> StreamingResponse:
    """The job's input, for comparing before and after; kept until the job's files expire (then 410)."""
    if job.expired:
        raise HTTPException(status.HTTP_410_GONE, f"the input expired at {job.expires_at.isoformat()} and was deleted")
    try:
        if format == "png":
            return stream_file(input_preview(job, storage, settings.data_dir / "previews"), "image/png", f"restora-{job.id}-input.png", inline=True)
        suffix = Path(job.input_key).suffix
        media_type = INPUT_MEDIA_TYPES.get(suffix, "application/octet-stream")
        return stream_file(storage.open(job.input_key), media_type, f"restora-{job.id}-input{suffix}")
    except FileNotFoundError:
        raise HTTPException(status.HTTP_410_GONE, "the input files are gone (expired or deleted)") from None
