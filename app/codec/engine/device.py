"""Where inference runs: CUDA, then Apple MPS, then CPU, unless the caller or
``HYPERTHUMB_DEVICE`` says otherwise. Half precision on CUDA, float32 elsewhere."""

import os
import re

import torch

from app.codec.errors import CodecError, shorten

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_DEVICE = re.compile(r"^(auto|cpu|cuda|mps)(?::(\d{1,3}))?$")
_CHOOSE = "choose auto, cpu, cuda, cuda:N (the Nth NVIDIA GPU) or mps (Apple GPUs)"


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _parse(name: str, origin: str) -> tuple[str, int | None]:
    """``cuda:1`` -> ("cuda", 1); every other spelling torch would reject or misread is a sentence."""
    match = _DEVICE.match(name)
    if match is None:
        raise CodecError(f"unknown device {shorten(name)!r}{origin}: {_CHOOSE}")
    kind, index = match[1], None if match[2] is None else int(match[2])
    if index is not None and kind != "cuda" and index != 0:
        raise CodecError(f"device {name!r}{origin} has no number {index}: only cuda takes a GPU number")
    if kind == "auto" and index is not None:
        raise CodecError(f"device {name!r}{origin}: auto takes no number; {_CHOOSE}")
    return kind, index


def select_device(name: str | None = None) -> torch.device:
    origin = "" if name else " (from HYPERTHUMB_DEVICE)"
    name = (name or os.environ.get("HYPERTHUMB_DEVICE") or "auto").strip().lower()
    kind, index = _parse(name, origin)
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise CodecError("CUDA was requested but no CUDA GPU is available")
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise CodecError(
            f"there is no GPU cuda:{index}{origin}: this machine has {count} "
            f"(cuda:0{'' if count == 1 else f' to cuda:{count - 1}'})"
        )
    if kind == "mps" and not _mps_available():
        raise CodecError("MPS was requested but Apple Metal is not available")
    return torch.device(kind if index is None or kind != "cuda" else f"cuda:{index}")


def inference_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32
