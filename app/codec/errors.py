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
    """Base class: the message is a complete sentence for the user. ``kind`` names the class as
    data (it crosses the codec service's process boundary; ``error_of_kind`` rebuilds it)."""

    kind = "codec"


class ImageLoadError(CodecError):
    """The file is missing, unreadable, truncated or not an image."""

    kind = "image-load"


class NotHyperThumbnailError(CodecError):
    """A readable image that does not carry the HyperThumbnail marker."""

    kind = "not-hyperthumbnail"


class FormatError(CodecError):
    """A HyperThumbnail whose marker or tables are damaged or of an unknown version."""

    kind = "format"


class WeightsError(CodecError):
    """Weights are missing, fail their hash, or do not match the architecture."""

    kind = "weights"


class OutputExistsError(CodecError):
    """The output path exists and overwriting was not asked for."""

    kind = "output-exists"


class ImageTooLargeError(ImageLoadError):
    """The image claims more pixels than the documented budget (``limits.py``) allows."""

    kind = "image-too-large"


def error_of_kind(kind: str, message: str) -> CodecError:
    """The ``CodecError`` subclass whose ``kind`` is ``kind`` (a plain ``CodecError`` for a kind
    this side does not know), carrying ``message``."""
    classes = [CodecError]
    while classes:
        cls = classes.pop()
        if cls.kind == kind:
            return cls(message)
        classes += cls.__subclasses__()
    return CodecError(message)


def user_message(exc: BaseException, part: str) -> str:
    """One sentence for any failure where it must stop (a process or thread boundary, the CLI):
    never a traceback. ``part`` says what was working, e.g. "the encoder"."""
    if isinstance(exc, CodecError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({shorten(exc.filename, 200)})" if exc.filename else ""
        return f"{exc.strerror or shorten(exc, 200)}{where}"
    if isinstance(exc, MemoryError):
        return f"out of memory: {part} needs more than this machine has free"
    return f"{part} failed: {type(exc).__name__}: {shorten(exc, 200)}"
