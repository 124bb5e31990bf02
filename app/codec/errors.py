"""Errors the codec raises on bad input.

Every error a user can cause (a missing file, a truncated image, a plain JPEG given to the
decoder, wrong weights) is a ``CodecError`` with a one-line message fit to show as is:
the CLI prints it and exits non-zero, the viewer shows it in the window.
"""


class CodecError(Exception):
    """Base class: the message is a complete sentence for the user."""


class ImageLoadError(CodecError):
    """The file is missing, unreadable, truncated or not an image."""


class NotHyperThumbnailError(CodecError):
    """A readable image that does not carry the HyperThumbnail marker."""


class FormatError(CodecError):
    """A HyperThumbnail whose marker or tables are damaged or of an unknown version."""


class WeightsError(CodecError):
    """Weights are missing, fail their hash, or do not match the architecture."""


class OutputExistsError(CodecError):
    """The output path exists and overwriting was not asked for."""
