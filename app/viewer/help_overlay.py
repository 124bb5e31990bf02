"""Help > Keyboard Shortcuts (F1 or ?): every key of every menu, over the image, until dismissed.

The list is read from the window's own actions when it opens, so it cannot drift from what the
keys really do; it is a child of the view, so it shows in full screen too.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent
from PySide6.QtWidgets import QLabel, QMenuBar, QWidget

EXTRA_KEYS = [  # what the view does itself, with no menu entry
    ("View", "Left / Right", "Previous / next image (when the whole image is in view)"),
    ("View", "Wheel", "Zoom around the mouse pointer"),
    ("View", "Drag", "Pan"),
    ("View", "Double-click", "Fit \u2194 100%"),
]


def shortcut_rows(bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, keys, what) for every action with a key, menu by menu, sub-menus included."""
    rows = []

    def walk(title: str, actions: list[QAction]) -> None:
        for action in actions:
            if action.menu() is not None:
                walk(title, action.menu().actions())
                continue
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
            if keys:
                rows.append((title, " / ".join(keys), action.text().replace("&", "").rstrip("\u2026")))

    for top in bar.actions():
        if top.menu() is not None:
            walk(top.text().replace("&", ""), top.menu().actions())
    return rows


def shortcut_html(rows: list[tuple[str, str, str]]) -> str:
    parts, last = ["<h3>Keyboard shortcuts</h3><table cellspacing='0'>"], None
    for menu, keys, what in rows:
        if menu != last:
            parts.append(f"<tr><td colspan='2' style='padding-top:8px;color:#9ab'><b>{escape(menu)}</b></td></tr>")
            last = menu
        parts.append(f"<tr><td style='padding-right:18px'><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>")
    parts.append("</table><p style='color:#999'>F1, ? or Escape closes this.</p>")
    return "".join(parts)


class ShortcutHelp(QLabel):
    """A translucent panel over ``view`` listing ``bar``'s keys; a click or ``toggle`` hides it."""

    def __init__(self, view: QWidget, bar: QMenuBar):
        super().__init__(view)
        self.bar = bar
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setStyleSheet("QLabel { background: rgba(20, 20, 20, 225); color: #e6e6e6; border-radius: 8px;"
                           " padding: 14px 18px; }")  # fmt: skip
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        rows = shortcut_rows(self.bar) + EXTRA_KEYS
        self.setText(shortcut_html(rows))
        self.adjustSize()
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        """Centred over the view (called again when the view is resized)."""
        parent = self.parentWidget()
        self.move(max(0, (parent.width() - self.width()) // 2), max(0, (parent.height() - self.height()) // 2))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()
        event.accept()
