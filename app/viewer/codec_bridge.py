"""The viewer's only door into ``app.codec``: everything else in the viewer imports from here.

Opening goes through ``app.codec.document`` (numpy and Pillow only), so showing a file never
waits for torch; the weights check imports torch and is asked for once, after the window shows.
"""

from __future__ import annotations

from app.codec.document import ImageDocument, open_image
from app.codec.errors import CodecError
from app.codec.orientation import display_size

__all__ = ["CodecError", "ImageDocument", "display_size", "open_image", "preview_scale", "weights_status"]


def weights_status() -> str | None:
    """None when trained weights are installed, else one sentence saying why not."""
    from app.codec.weights import installed_weights_status  # imports torch: asked for after the window shows

    return installed_weights_status()


def preview_scale(document: ImageDocument) -> float:
    """How many original pixels one preview pixel covers (the marker's scale for a HyperThumbnail).

    A HyperThumbnail's original is the thumbnail scaled by exactly ``scale`` and cropped at the
    top-left, so the ratio of sizes would be slightly off when the size is not a multiple of it.
    """
    if document.marker is not None:
        return float(document.marker.scale)
    return document.full_size[0] / document.preview.shape[1]
