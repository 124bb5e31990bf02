"""One way to write sizes and rates everywhere in the viewer (title, status bar, panel, dialogs).

Sizes use powers of 1000 (kB, MB), as GNOME, macOS and the export dialog's estimate do, so a
file's size reads the same in the panel and in the dialog that made it; bits per pixel always
have three decimals (the low rates of a HyperThumbnail, ~0.05 bpp, need them).
"""

from __future__ import annotations


def size_text(size: float) -> str:
    """Bytes as people read them: 850 bytes, 12.3 kB, 457 kB, 4.56 MB."""
    if size < 1000:
        return f"{size:.0f} bytes"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.3g} {unit}" if size < 100 else f"{size:.0f} {unit}"
    raise AssertionError("unreachable")


def exact_size_text(size: int) -> str:
    """'17.6 kB (17,612 bytes)': the rounded size and the exact count (the metadata panel)."""
    return f"{size:,} bytes" if size < 1000 else f"{size_text(size)} ({size:,} bytes)"


def bpp_text(bits_per_pixel: float) -> str:
    """'0.086 bpp': file bits per full-resolution pixel."""
    return f"{bits_per_pixel:.3f} bpp"
