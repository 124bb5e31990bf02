"""One dark look for every part of the window: menus, status bar, docks, scroll bars, dialogs.

The canvas is dark (a photo is judged against a neutral dark surround), so a light desktop
palette around it left light bars at every edge. Fusion with a dark palette is the one style
that takes the palette everywhere on every platform; the window and its dialogs inherit it.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

WINDOW = QColor(37, 37, 37)  # close to the canvas (40, 40, 40): the bars read as part of it
BASE = QColor(28, 28, 28)
TEXT = QColor(225, 225, 225)
DIM_TEXT = QColor(130, 130, 130)
HIGHLIGHT = QColor(64, 104, 160)  # a quieter blue than the strip's HT badge (35, 130, 220): the two never read alike
ERROR_COLOUR = "#ff7070"  # error text in dialogs: readable on the dark window


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: WINDOW,
        QPalette.ColorRole.ToolTipBase: QColor(50, 50, 50),
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: DIM_TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: QColor(50, 50, 50),
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Light: QColor(70, 70, 70),
        QPalette.ColorRole.Midlight: QColor(55, 55, 55),
        QPalette.ColorRole.Mid: QColor(45, 45, 45),
        QPalette.ColorRole.Dark: QColor(22, 22, 22),
        QPalette.ColorRole.Shadow: QColor(0, 0, 0),
        QPalette.ColorRole.Highlight: HIGHLIGHT,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(90, 160, 240),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, DIM_TEXT)
    return palette


# The docks' resize handles: Fusion draws a light grip line on them; here they are plain window
# colour, a shade lighter under the mouse so they can still be found.
SEPARATOR_STYLE = """
QMainWindow::separator { background: rgb(37, 37, 37); width: 5px; height: 5px; }
QMainWindow::separator:hover { background: rgb(70, 70, 70); }
"""


def apply_theme(app: QApplication) -> None:
    """Fusion and the dark palette for the whole application (call before the window is made)."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(SEPARATOR_STYLE)
