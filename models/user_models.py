"""Users' own model files, recognised by spandrel (its MIT core only) and run on images and video frames.

A file in the models directory (``RESTORA_MODELS_DIR``, or added by ``restora models add``) is a
``.safetensors`` file or a ``.pth`` / ``.ckpt`` state dict, which is unpickled by torch's weights-only
loader so it cannot run code. spandrel names the architecture from the weights alone; its purpose
decides the task (a 1x restoration model denoises, a super-resolution model upscales by its scale).
What Restora cannot feed (inpainting, face models, other than 1 or 3 channels) is refused with the
reason, as is every file spandrel does not know. A user's model replaces Restora's own for that
task: it runs on the input as sent, frame by frame for videos.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import re
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.formats import MODEL_SUFFIXES, SAFETENSORS_SUFFIX
from models.image.planes import run_on_planes
from models.interface import FRAME_KINDS, NoiseEstimate, Progress, Task, no_progress
from models.tiling import run_tiled

log = logging.getLogger("restora.models")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KEEP_LOADED = 4  # users' models a worker keeps loaded (the most recently used); others load again when asked for
TILE_SIDE = 256  # input pixels per tile side for frames larger than one tile (bounded memory for any architecture)
TILE_MARGIN = 16  # context around a tile, in input pixels


class ModelFileError(ValueError):
    """A model file Restora cannot use, with the reason in words."""


@dataclass(frozen=True)
class UserModelInfo:
    """What detection found in a file: enough to list it and to check a job against it."""

    name: str
    file: str
    architecture: str
    task: Task
    scale: int
    channels: int
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.sha256[:12], "kind": "image", "kinds": list(FRAME_KINDS), "role": "restorer",
                "task": self.task, "scale": self.scale if self.task == "upscale" else None, "level": None, "source": "user",
                "architecture": self.architecture}


def read_state_dict(path: Path) -> dict:
    """The tensors of a model file, without running any code it may carry."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(f"{path.name}: model files must be {', '.join(MODEL_SUFFIXES)} (TorchScript .pt files can run code and are refused)")
    try:
        if suffix == SAFETENSORS_SUFFIX:
            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"GLOBAL (\S+)", str(exc))  # torch's weights-only unpickler names what the file asked for
        if refused:
            raise ModelFileError(f"{path.name} is refused: unpickling it would call {refused.group(1)}, and Restora loads tensors only; "
                                 "save the model's state dict as .safetensors") from None
        raise ModelFileError(f"{path.name} is not a readable model file (not a state dict of tensors)") from None
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{path.name} is not a readable model file: {exc}") from None


def detect(path: Path, name: str | None = None):
    """Read and recognise ``path``: its :class:`UserModelInfo` and spandrel's model descriptor (on the CPU)."""
    from spandrel import MAIN_REGISTRY, ImageModelDescriptor, UnsupportedModelError, canonicalize_state_dict

    path = Path(path)
    state = read_state_dict(path)
    if not isinstance(state, dict) or not state:
        raise ModelFileError(f"{path.name} holds no state dict of tensors")
    try:
        descriptor = MAIN_REGISTRY.load(canonicalize_state_dict(state))
    except UnsupportedModelError:
        raise ModelFileError(f"{path.name}: spandrel does not recognise this architecture (see spandrel's list of supported models)") from None
    except Exception as exc:  # spandrel's detectors raise what the weights make them raise
        raise ModelFileError(f"{path.name}: spandrel could not build the model from these weights: {type(exc).__name__}: {exc}") from None
    arch = descriptor.architecture.name
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose not in ("SR", "Restoration"):
        raise ModelFileError(f"{path.name} is a {arch} {descriptor.purpose} model; Restora runs denoising and upscaling models only")
    if descriptor.input_channels != descriptor.output_channels or descriptor.input_channels not in (1, 3):
        raise ModelFileError(f"{path.name}: {arch} with {descriptor.input_channels} input and {descriptor.output_channels} output channels; "
                             "Restora feeds 1 (grey) or 3 (RGB) channels and expects as many back")
    task: Task = "denoise" if descriptor.scale == 1 else "upscale"
    info = UserModelInfo(name=name or path.stem, file=path.name, architecture=arch, task=task, scale=int(descriptor.scale),
                         channels=int(descriptor.input_channels), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    return info, descriptor


def add(source: Path, folder: Path, name: str | None = None, reserved: set[str] | frozenset[str] = frozenset(), replace: bool = False) -> UserModelInfo:
    """Check ``source`` and store it in ``folder`` as ``<name>.safetensors`` (a .pth is converted, so
    it is never unpickled again). ``reserved``: names taken by Restora's own models."""
    from safetensors.torch import save_file

    source = Path(source)
    name = name or source.stem
    if not NAME_PATTERN.match(name):
        raise ModelFileError(f"{name!r} is not a usable model name: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit")
    if name in reserved:
        raise ModelFileError(f"{name!r} is the name of one of Restora's own models; choose another with --name")
    detect(source, name)  # refused before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}{SAFETENSORS_SUFFIX}"
    others = [folder / f"{name}{suffix}" for suffix in MODEL_SUFFIXES if (folder / f"{name}{suffix}").exists()]
    if others and not replace:
        raise ModelFileError(f"a model named {name!r} is already in {folder} ({others[0].name}); use --replace to overwrite it")
    temp = folder / f".{name}.partial{SAFETENSORS_SUFFIX}"  # hidden from workers until checked
    try:
        if source.suffix.lower() == SAFETENSORS_SUFFIX:
            shutil.copyfile(source, temp)
        else:
            from spandrel import canonicalize_state_dict

            state = canonicalize_state_dict(read_state_dict(source))  # e.g. {"params_ema": {...}} -> the tensors
            save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(temp))
            temp.chmod(0o644)
        info = detect(temp, name)[0]
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    for old in others:
        old.unlink()
    temp.replace(target)
    return dataclasses.replace(info, file=target.name)


class UserModel:
    """One user's model, loaded once on a device: (H, W) or (H, W, 3) float32 in input units ->
    the same units, ``scale`` times larger on each side (1 for denoisers)."""

    def __init__(self, path: Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        self.info: UserModelInfo | None = None
        self.descriptor = None
        self.device = "cpu"

    @property
    def scale(self) -> int:
        return self.info.scale

    def setup(self, device: str) -> None:
        self.info, descriptor = detect(self.path, self.name)
        self.descriptor = descriptor.to(device).eval()
        self.device = device

    def predict(self, image: np.ndarray, noise: NoiseEstimate | None = None, progress: Progress = no_progress, peak: float | None = None) -> np.ndarray:
        """``peak``: the value of white (default: guessed from the data, as for images)."""
        return run_on_planes(image, self.info.channels, self._run_tiled, lambda f: progress(f, "running " + self.name), peak)

    def _run_tiled(self, planes: np.ndarray, progress) -> np.ndarray:
        return run_tiled(self._run, planes, len(planes), TILE_SIDE, TILE_MARGIN, progress, scale=self.scale)

    def _run(self, planes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(planes))[None].to(self.device)
            return self.descriptor(x)[0].float().cpu().numpy()


@dataclass
class _Entry:
    stamp: tuple[int, int]  # mtime_ns, size: a changed file is detected again
    info: UserModelInfo | None = None
    problem: str | None = None


class UserModels:
    """The models directory as a worker sees it: files are detected when they appear or change, and
    loaded on first use. Files Restora cannot use are kept out, with the reason in ``problems``."""

    def __init__(self, folder: Path, device: str, reserved: set[str] | frozenset[str] = frozenset()):
        self.folder = Path(folder)
        self.device = device
        self.reserved = reserved
        self._entries: dict[Path, _Entry] = {}
        self._loaded: OrderedDict[str, tuple[str, UserModel]] = OrderedDict()  # name -> (sha256, model), least recently used first

    def refresh(self) -> bool:
        """Look at the folder again; True when what it offers changed."""
        files = sorted(p for p in self.folder.glob("*") if p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith(".") and p.is_file()) \
            if self.folder.is_dir() else []
        changed = set(self._entries) != set(files)
        entries = {}
        for path in files:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            entry = self._entries.get(path)
            if entry is None or entry.stamp != stamp:
                entry, changed = self._detect(path, stamp), True
            entries[path] = entry
        self._entries = entries
        return changed

    def _detect(self, path: Path, stamp: tuple[int, int]) -> _Entry:
        if path.stem in self.reserved:
            return _Entry(stamp, problem=f"{path.name}: {path.stem!r} is the name of one of Restora's own models")
        if not NAME_PATTERN.match(path.stem):
            return _Entry(stamp, problem=f"{path.name}: not a usable model name")
        try:
            info, _ = detect(path)
        except ModelFileError as exc:
            log.warning("model file refused: %s", exc)
            return _Entry(stamp, problem=str(exc))
        log.info("model file %s: %s, %s x%d", path.name, info.architecture, info.task, info.scale)
        return _Entry(stamp, info=info)

    def infos(self) -> list[UserModelInfo]:
        names: dict[str, UserModelInfo] = {}
        for entry in self._entries.values():
            if entry.info is not None:
                names.setdefault(entry.info.name, entry.info)  # two files of one name: the first in order
        return list(names.values())

    @property
    def problems(self) -> dict[str, str]:
        return {path.name: entry.problem for path, entry in self._entries.items() if entry.problem}

    def catalog(self) -> list[dict[str, Any]]:
        """What the folder offers now (it is looked at first: only changed files are detected again)."""
        self.refresh()
        return [info.describe() for info in self.infos()]

    def get(self, name: str) -> UserModel:
        """The loaded model of that name (detected again if its file changed); KeyError if there is none."""
        self.refresh()
        info = next((i for i in self.infos() if i.name == name), None)
        if info is None:
            raise KeyError(name)
        held = self._loaded.get(name)
        if held is None or held[0] != info.sha256:
            model = UserModel(self.folder / info.file, name)
            model.setup(self.device)
            self._loaded[name] = held = (info.sha256, model)
        self._loaded.move_to_end(name)
        while len(self._loaded) > KEEP_LOADED:  # a folder of many large models must not fill the worker's memory
            self._loaded.popitem(last=False)
        return held[1]
