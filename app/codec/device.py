"""Where inference runs: CUDA, then Apple MPS, then CPU, unless the caller or
``HYPERTHUMB_DEVICE`` says otherwise. Half precision on CUDA, float32 elsewhere."""
import os

import torch

from .errors import CodecError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_device(name: str | None = None) -> torch.device:
    name = (name or os.environ.get("HYPERTHUMB_DEVICE") or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CodecError("CUDA was requested but no CUDA GPU is available")
    if name == "mps" and not _mps_available():
        raise CodecError("MPS was requested but Apple Metal is not available")
    if name.split(":")[0] not in DEVICE_CHOICES:
        raise CodecError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)


def inference_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32
