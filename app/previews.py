"""Browser-viewable PNG previews of a job's input (the "before" of the web page's comparison).

A stack shows its first frame, an image itself, a video its first frame, stretched to 8 bits the way
the result's ``?format=png`` preview is, so before and after compare fairly. A preview is made once
and kept in storage next to the job's files (it expires and is deleted with them).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np
import tifffile
from PIL import Image

from core.jobs import JobRecord
from core.storage import Storage, StoredFile
from models import metadata
from models.formats import STACK_SUFFIXES, TIFF_SUFFIXES, is_planar, stretch_to_8bit, suffix_of

PREVIEW_MAX_SIDE = 2048  # larger inputs are shrunk: a preview is for looking, not measuring


def preview_key(job_id: str) -> str:
    return f"jobs/{job_id}/input-preview.png"


def input_preview(job: JobRecord, storage: Storage, work_dir: Path) -> StoredFile:
    """The stored preview of ``job``'s input, made first if needed. ``FileNotFoundError`` when the input is gone."""
    key = preview_key(job.id)
    try:
        return storage.open(key)
    except FileNotFoundError:
        pass
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=f"{job.id}-preview-") as tmp:
        source = storage.local_copy(job.input_key, Path(tmp))
        frame, profile = _first_frame(source, job), None
        if job.kind == "image" and suffix_of(source) not in STACK_SUFFIXES:  # upright and in its colours, as the result is
            tags = metadata.read(source)
            frame, profile = metadata.upright(frame, tags.orientation), tags.profile
        image = Image.fromarray(frame if frame.dtype == np.uint8 else stretch_to_8bit(frame))
        image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        png = Path(tmp) / "preview.png"
        image.save(png, format="PNG", icc_profile=profile)
        storage.put(key, png)
    return storage.open(key)


def _first_frame(path: Path, job: JobRecord) -> np.ndarray:
    suffix = suffix_of(path)
    if suffix in STACK_SUFFIXES:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if job.kind == "image":
            return np.asarray(array if array.ndim == 2 else array[..., :3])
        frames_last = job.input.get("layout") == "hwt" or (job.input.get("layout") != "thw" and array.shape[2] < array.shape[0])
        return np.asarray(array[:, :, 0] if frames_last else array[0])
    if suffix in TIFF_SUFFIXES:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            pixels = metadata.tiff_as_seen(page.asarray(), page)
        return np.squeeze(np.moveaxis(pixels, 0, -1) if is_planar(pixels.shape) else pixels)
    if job.kind == "video":
        with av.open(str(path)) as container:
            return next(container.decode(video=0)).to_ndarray(format="rgb24")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB" if image.mode not in ("L", "I;16", "I") else image.mode))

