"""Errors the codec raises on bad input.

Every error a user can cause (a missing file, a truncated image, a plain JPEG given to the
decoder, wrong weights) is a ``CodecError`` with a one-line message fit to show as is:
the CLI prints it and exits non-zero, the viewer shows it in the window. Values that came
from the user or the file are ``shorten``-ed first: a message is one readable line, never a
4000-digit number or a whole hostile string.
"""

SHORT_VALUE = 40  # characters of a user's value a message quotes


def shorten(value: object, limit: int = SHORT_VALUE) -> str:
    """``str(value)``, cut in the middle to at most ``limit`` characters ("1234...7890 (4000 chars)")."""
    text = value if isinstance(value, str) else _str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    if len(text) <= limit:
        return text
    note = f" ({len(text)} chars)"
    keep = max(limit - len(note) - 3, 2)
    return f"{text[: keep - keep // 2]}...{text[len(text) - keep // 2 :]}{note}"


def _str(value: object) -> str:
    try:
        return str(value)
    except ValueError:  # an int beyond Python's digit limit refuses str()
        return f"<a {value.bit_length()}-bit number>" if isinstance(value, int) else "<unprintable>"


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


class ImageTooLargeError(ImageLoadError):
    """The image claims more pixels than the documented budget (``limits.py``) allows."""
