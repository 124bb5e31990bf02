"""Help > Keyboard Shortcuts (F1 or ?): every key of every menu, over the image, until dismissed.

The list is read from the window's own actions when it opens, so it cannot drift from what the
keys really do; it is a child of the view, so it shows in full screen too. It is laid out to fit
the view whenever the view changes size (a panel opened beside it): two columns, three or one,
smaller type if none fits.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QFont, QFontInfo, QKeySequence, QMouseEvent
from PySide6.QtWidgets import QLabel, QMenuBar, QWidget

MARGIN = 8  # view pixels kept free around the panel
MIN_POINTS = 6.0  # the smallest type it shrinks to

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


def shortcut_html(rows: list[tuple[str, str, str]], columns: int = 2) -> str:
    """``columns`` columns (whole menus kept together, about as many rows in each)."""
    menus = list(dict.fromkeys(menu for menu, _, _ in rows))
    groups: list[list[str]] = [[]]
    count = 0
    for menu in menus:  # a menu starts the next column once this one has its share of the rows
        if groups[-1] and len(groups) < columns and count >= len(rows) * len(groups) / columns:
            groups.append([])
        groups[-1].append(menu)
        count += sum(1 for m, _, _ in rows if m == menu)
    parts = [_column([r for r in rows if r[0] in group]) for group in groups]
    return (
        "<h3>Keyboard shortcuts</h3><table><tr>"
        + "".join(f"<td style='vertical-align:top;padding-right:28px'>{c}</td>" for c in parts)
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
        self._rows: list[tuple[str, str, str]] = []
        self.columns = 2
        view.installEventFilter(self)
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        self._rows = shortcut_rows(self.bar) + EXTRA_KEYS
        self.show()
        self.place()
        self.raise_()

    def place(self) -> None:
        """Laid out to fit the view (two columns, else three, else one; the type smaller if none
        fits: a narrow view, with the metadata panel open, must not cut it), then centred over it.
        Called again whenever the view is resized."""
        if not self.isVisible():
            return
        parent = self.parentWidget()
        room = parent.size() - QSize(2 * MARGIN, 2 * MARGIN)
        font = QFont(parent.font())
        full = QFontInfo(font).pointSizeF()  # also when the font was given in pixels
        self.setFont(font)

        def scale(columns: int) -> float:  # how much smaller the type must be for ``columns`` to fit
            self.setText(shortcut_html(self._rows, columns))
            hint = self.sizeHint()
            return min(room.width() / max(1, hint.width()), room.height() / max(1, hint.height()), 1.0)

        best = max((2, 3, 1), key=scale)  # the first that fits at full size, else the least shrunk
        self.setText(shortcut_html(self._rows, best))
        size = full
        while not self._fits(room) and size > MIN_POINTS:
            size = max(MIN_POINTS, size - 0.5)
            font.setPointSizeF(size)
            self.setFont(font)
        self.columns = best
        hint = self.sizeHint()
        self.resize(min(hint.width(), max(1, room.width())), min(hint.height(), max(1, room.height())))
        self.move(max(0, (parent.width() - self.width()) // 2), max(0, (parent.height() - self.height()) // 2))

    def _fits(self, room: QSize) -> bool:
        hint = self.sizeHint()
        return hint.width() <= room.width() and hint.height() <= room.height()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.place()  # a dock opened or closed beside the view: it changed size, the window did not
        return False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()
        event.accept()
