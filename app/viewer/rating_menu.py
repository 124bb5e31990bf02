"""Edit > Rating and Edit > Colour Label: stars (keys 0-5) and a colour (6-9, as in Lightroom).

They are written at once into the file's XMP (``xmp:Rating``, ``xmp:Label``, what Lightroom,
darktable and digiKam read): a JPEG (a HyperThumbnail too) in place and atomically, no pixel
re-encoded and every other segment kept (``app.codec.files.ratings``); any other type into an XMP
sidecar beside it (``photo.png.xmp``, darktable's and digiKam's name), never into the image. A
colour's key given again takes the label off, as in Lightroom; 0 takes the stars off.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from app.viewer.codec_bridge import COLOURS, CodecError, Labels, holds_xmp, read_labels, write_labels
from app.viewer.describe import rating_text

COLOUR_KEYS = {"Red": "6", "Yellow": "7", "Green": "8", "Purple": "9"}  # Lightroom's; Blue from the menu
SWATCHES = {"Red": "#e5484d", "Yellow": "#e5c21a", "Green": "#3fb950", "Blue": "#4c8df6", "Purple": "#a371f7"}
STAR_COLOUR = "#f0b429"


def labels_html(labels: Labels) -> str:
    """The status bar's stars and colour swatch (rich text); "" for neither."""
    parts = []
    if labels.rating:
        parts.append(f"<span style='color:{STAR_COLOUR}'>{escape(rating_text(labels.rating))}</span>")
    if labels.label:
        colour = SWATCHES.get(labels.label, "#999999")
        parts.append(f"<span style='color:{colour}'>\u25cf</span> {escape(labels.label)}")
    return "&nbsp;&nbsp;".join(parts)


class RatingTools(QObject):
    """The rating and colour label of ``window``'s (a ``MainWindow``'s) shown file: read when it
    shows (``labels_for``), written when a key or the menu changes them; ``window.show_labels``
    then shows them."""

    def __init__(self, window, say: Callable[[str], None]):
        super().__init__(window)
        self.window = window
        self.say = say

    def make_menus(self, menu: QMenu) -> None:
        menu.addSeparator()
        stars = menu.addMenu("Ra&ting")
        for rating in range(6):
            text = f"Rate &{rating} " + ("(No Stars)" if rating == 0 else "\u2605" * rating)
            self._add(stars, text, str(rating), lambda _=False, r=rating: self.set_rating(r))
        colours = menu.addMenu("Colour &Label")
        for colour in COLOURS:
            self._add(colours, f"Label &{colour}", COLOUR_KEYS.get(colour), lambda _=False, c=colour: self.set_label(c))
        self._add(colours, "&No Label", None, lambda: self.set_label(None))

    def _add(self, menu: QMenu, text: str, key: str | None, slot) -> QAction:
        action = QAction(text, self.window)
        if key:
            action.setShortcut(QKeySequence(key))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    @staticmethod
    def labels_for(path: Path) -> Labels:
        """``path``'s rating and label as its XMP (or sidecar) says: a few small reads."""
        return read_labels(path)

    def _shown(self) -> tuple[Path, Labels] | None:
        """The file on screen and its labels; None while none is shown or one is still loading."""
        path, document = self.window.playlist.current, self.window.document
        if path is None or document is None or Path(document.path) != path:
            return None
        return path, self.window.labels

    def set_rating(self, rating: int) -> None:
        shown = self._shown()
        if shown is not None:
            path, labels = shown
            self._write(path, Labels(rating, labels.label))

    def set_label(self, colour: str | None) -> None:
        """Give the shown file the colour label ``colour``; the label it has already takes it off."""
        shown = self._shown()
        if shown is not None:
            path, labels = shown
            self._write(path, Labels(labels.rating, None if colour == labels.label else colour))

    def _write(self, path: Path, labels: Labels) -> None:
        try:
            written = write_labels(path, labels)
        except CodecError as exc:
            self.say(f"The rating was not saved: {exc}")
            return
        self.window.show_labels(path, read_labels(path))  # what the file says now
        what = ", ".join(
            part
            for part in (
                f"{labels.rating} star{'s' * (labels.rating != 1)}" if labels.rating else "no stars",
                f"{labels.label} label" if labels.label else "no colour label",
            )
        )
        where = (
            f"in {path.name}'s XMP (no pixel re-encoded)"
            if holds_xmp(path)
            else f"in the sidecar {written.name} ({path.suffix.lstrip('.').upper() or 'this type'} files are not rewritten)"
        )
        self.say(f"Saved {what} {where}.")
