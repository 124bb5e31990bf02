"""Errors the codec raises on bad input.

Every error a user can cause (a missing file, a truncated image, a plain JPEG given to the
decoder, wrong weights) is a ``CodecError`` with a one-line message fit to show as is:
the CLI prints it and exits non-zero, the viewer shows it in the window. Values that came
from the user or the file are ``shorten``-ed first: a message is one readable line, never a
4000-digit number or a whole hostile string.
"""

import unicodedata

SHORT_VALUE = 40  # characters of a user's value a message quotes
# Characters that change how a terminal shows what follows: line breaks of every kind, escape
# sequences (C0/C1 controls, DEL) and the bidirectional overrides and isolates.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x0a``, ``\\u202e``): what a file says
    (a model name, an EXIF value, a file name) can neither forge extra lines of output nor steer
    the terminal. Everything printed from a file goes through here."""
    if text.isprintable():
        return text
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS
        else c
        for c in text
    )


def shorten(value: object, limit: int = SHORT_VALUE) -> str:
    """``str(value)``, cut in the middle to at most ``limit`` characters ("1234...7890 (4000 chars)")."""
    text = value if isinstance(value, str) else _str(value)
    text = printable(text.replace("\n", " ").replace("\r", " "))
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


class ReencodedError(FormatError):
    """A HyperThumbnail another program saved again as a new JPEG: its marker survived but its
    quantization tables are not the encoder's, so a reconstruction would be worse than the
    thumbnail. Shown as a plain image; decoded only when the user insists."""

    kind = "reencoded"


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
