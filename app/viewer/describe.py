"""The words the window shows about a document: its title and its status-bar texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.viewer.codec_bridge import ImageDocument, display_size
from app.viewer.units import bpp_text

APP_NAME = "HyperThumbnail Viewer"
NO_WEIGHTS_SHORT = "Reconstruction unavailable: no trained weights installed"
RECONSTRUCTED = "Reconstructed, full size"  # every visible pixel is the decoder's, at the original's size

_FORMAT_NAMES = {"JPG": "JPEG", "JPE": "JPEG", "TIF": "TIFF"}


def format_name(path: Path) -> str:
    """The file type as people say it, from the name (JPEG, PNG, TIFF...)."""
    suffix = path.suffix.lstrip(".").upper()
    return _FORMAT_NAMES.get(suffix, suffix or "image")


def size_text(document: ImageDocument) -> str:
    """The original photo's size as displayed (width and height swap for turned photos)."""
    width, height = display_size(*document.full_size, document.orientation)
    return f"{width}x{height}"


def window_title(path: Path | None, document: ImageDocument | None) -> str:
    if path is None:
        return APP_NAME
    if document is not None and document.is_hyperthumbnail:
        return f"{path.name} \u2014 HyperThumbnail {size_text(document)} \u2014 {APP_NAME}"
    if document is not None:
        return f"{path.name} \u2014 {format_name(path)} {size_text(document)} \u2014 {APP_NAME}"
    return f"{path.name} \u2014 {APP_NAME}"


def document_summary(document: ImageDocument) -> str:
    """'HyperThumbnail — full size WxH, N.NNN bpp' or 'JPEG WxH', then any notes from opening."""
    if document.is_hyperthumbnail:
        text = f"HyperThumbnail \u2014 full size {size_text(document)}, {bpp_text(document.bits_per_pixel)}"
    else:
        text = f"{format_name(document.path)} {size_text(document)}"
    return "; ".join([text, *document.notes])


def zoom_text(zoom: float, fitted: bool) -> str:
    percent = f"{zoom * 100:.0f}%" if zoom >= 0.1 else f"{zoom * 100:.1f}%"
    return f"{percent} (fit)" if fitted else percent


def decoder_text(device: str, runtime: str) -> str:
    """What decodes, for the status bar: "onnx-fp32 on cpu", or just "torch-cuda-fp16"."""
    if not runtime:
        return device
    return runtime if device in runtime else f"{runtime} on {device}"


@dataclass(frozen=True)
class ReconstructionStatus:
    """Where reconstruction of the shown image stands; ``reconstruction`` fills it, this module words it.

    ``state``: "none" (no image), "plain" (not a HyperThumbnail), "preview" (the preview is sharp
    enough at this zoom), "reconstructing", "detailing" (the base reconstruction is shown
    everywhere; the detail layer's pass is running), "full" (every visible tile decoded: the
    decoder's reconstruction at the original's size, not the original photo) or "unavailable".
    """

    state: str = "none"
    percent: int = 0
    shown: bool = True  # False: the user flipped back to the upscaled preview (key C)
    device: str | None = None  # what decodes: ``decoder_text``
    seconds: float | None = None  # how long the last visible region took to decode
    reason: str | None = None  # why reconstruction is unavailable
    note: str | None = None  # e.g. the file's detail layer is damaged: the base reconstruction is shown


def reconstruction_text(status: ReconstructionStatus) -> tuple[str, str]:
    """(status-bar text, tooltip) for ``status``."""
    if status.state == "none":
        return "", ""
    if status.state == "plain":
        return "Plain image", "Not a HyperThumbnail: there is no full-resolution photo to reconstruct."
    if status.state == "unavailable":
        return indicator_text(status), status.reason or ""
    words = indicator_text(status)  # the canvas and the status bar say the same
    details = [status.device] if status.device else []
    if status.note:
        details.append(status.note)
    if status.seconds is not None:
        details.append(f"last decode {status.seconds:.2f} s")
    tooltip = "Key C flips between the upscaled preview and the reconstruction (shown now: {}).".format(
        "reconstruction" if status.shown else "upscaled preview"
    )
    return " \u00b7 ".join([words, *details]), tooltip


def indicator_text(status: ReconstructionStatus) -> str:
    """The few words drawn on the canvas (also in full screen): which pixels the user is looking at.
    "Reconstructed, full size" once every visible pixel is reconstructed: pixels the decoder made
    at the original's size, never called the original ("full resolution"); '' for plain images."""
    if status.state in ("none", "plain"):
        return ""
    if status.state == "unavailable":
        return "Preview \u2014 reconstruction unavailable"
    if not status.shown:
        return "Upscaled preview (C)"
    return {
        "preview": "Preview",
        "reconstructing": f"Reconstructing {status.percent}% of the visible area",
        "detailing": f"Adding detail: {status.percent}% of the visible area",
        "full": RECONSTRUCTED,
    }[status.state]


def rating_text(rating: int) -> str:
    """Stars for a rating: "★★★☆☆" for 3; "rejected" for -1; "" for none."""
    if rating < 0:
        return "rejected"
    return "\u2605" * rating + "\u2606" * (5 - rating) if rating else ""
