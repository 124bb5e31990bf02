"""The viewer's only door into ``app.codec``: everything else in the viewer imports from here.

Opening goes through ``app.codec.document`` (numpy and Pillow only), so showing a file never
waits for torch; the weights check and the decoder import torch lazily, the decoder only on the
reconstruction worker thread, so the GUI thread never pays for loading a network.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from app.codec.document import ImageDocument, open_image
from app.codec.errors import CodecError
from app.codec.orientation import display_box_to_stored, display_size
from app.codec.tiling import Box, CancelFn, Cancelled

__all__ = [
    "Box", "Cancelled", "CodecError", "DocumentDecoder", "ImageDocument", "display_box_to_stored",
    "display_size", "open_decoder", "open_image", "preview_scale", "weights_status",
]  # fmt: skip


def weights_status() -> str | None:
    """None when trained weights are installed, else one sentence saying why not."""
    # imports torch: asked for after the window shows
    from app.codec.weights import installed_weights_status

    return installed_weights_status()


def preview_scale(document: ImageDocument) -> float:
    """How many original pixels one preview pixel covers (the marker's scale for a HyperThumbnail).

    A HyperThumbnail's original is the thumbnail scaled by exactly ``scale`` and cropped at the
    top-left, so the ratio of sizes would be slightly off when the size is not a multiple of it.
    """
    if document.marker is not None:
        return float(document.marker.scale)
    return document.full_size[0] / document.preview.shape[1]


class DocumentDecoder:
    """One HyperThumbnail's decoder as the viewer sees it: stored-coordinate boxes in, uint8 RGB out.

    Making one loads the weights the file's marker names (once per weights file and process) and
    prepares the file's decoder inputs, so it is made on the worker thread, once per document.
    """

    def __init__(self, document: ImageDocument, weights_dir: str | Path | None = None):
        codec = _codec(weights_dir)
        self.device: str = codec.device.type  # "cpu", "cuda" or "mps": shown in the status bar
        self._reconstructor = codec.reconstructor(document)

    def decode(self, box: Box, cancelled: CancelFn = None) -> np.ndarray:
        """The full-resolution pixels of ``box`` (stored orientation); raises ``Cancelled``."""
        return self._reconstructor.decode(box, cancelled=cancelled)


def open_decoder(document: ImageDocument, weights_dir: str | Path | None = None) -> DocumentDecoder:
    """A decoder for ``document``; raises ``CodecError`` (e.g. its weights are not installed)."""
    return DocumentDecoder(document, weights_dir)


_codecs: dict[tuple[Path, str], object] = {}
_codecs_lock = threading.Lock()


def _codec(weights_dir: str | Path | None):
    """One ``Codec`` per weights folder (and device setting), so models load once per process."""
    from app.codec.api import Codec  # imports torch
    from app.codec.weights import weights_dir as resolve

    key = (resolve(weights_dir).resolve(), os.environ.get("HYPERTHUMB_DEVICE", ""))
    with _codecs_lock:
        if key not in _codecs:
            _codecs[key] = Codec(weights_dir=key[0])
        return _codecs[key]
