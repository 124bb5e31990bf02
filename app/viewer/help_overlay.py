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
    ("Mouse and arrows", "Left / Right", "Previous / next image (when the whole image is in view)"),
    ("Mouse and arrows", "Wheel", "Zoom around the mouse pointer"),
    ("Mouse and arrows", "Drag", "Pan (on the comparison line: move it)"),
    ("Mouse and arrows", "Double-click", "Fit \u2194 100%"),
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


def _column(rows: list[tuple[str, str, str]]) -> str:
    parts, last = ["<table cellspacing='0'>"], None
    for menu, keys, what in rows:
        if menu != last:
            parts.append(f"<tr><td colspan='2' style='padding-top:8px;color:#9ab'><b>{escape(menu)}</b></td></tr>")
            last = menu
        parts.append(f"<tr><td style='padding-right:18px'><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def shortcut_html(rows: list[tuple[str, str, str]]) -> str:
    """Two columns (whole menus kept together), so the list fits a laptop screen's window."""
    menus = list(dict.fromkeys(menu for menu, _, _ in rows))
    left, count = [], 0
    for menu in menus:  # menus go left until about half the rows are there
        if count >= len(rows) / 2:
            break
        left.append(menu)
        count += sum(1 for m, _, _ in rows if m == menu)
    columns = [_column([r for r in rows if r[0] in left]), _column([r for r in rows if r[0] not in left])]
    return (
        "<h3>Keyboard shortcuts</h3><table><tr>"
        + "".join(f"<td style='vertical-align:top;padding-right:28px'>{c}</td>" for c in columns)
        + "</tr></table><p style='color:#999'>F1, ? or Escape closes this.</p>"
    )


class ShortcutHelp(QLabel):
    """A translucent panel over ``view`` listing ``bar``'s keys; a click or ``toggle`` hides it."""

    def __init__(self, view: QWidget, bar: QMenuBar):
        super().__init__(view)
        self.bar = bar
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setStyleSheet(
            "QLabel { background: rgba(20, 20, 20, 225); color: #e6e6e6; border-radius: 8px; padding: 14px 18px; }"
        )
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
