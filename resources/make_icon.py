"""Render the 256 px PNG icon from the hand-made SVG (for places that take no SVG).

QT_QPA_PLATFORM=offscreen python resources/make_icon.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SVG = HERE / "hyperthumbnail-viewer.svg"
PNG = HERE / "hyperthumbnail-viewer.png"
SIZE = 256


def main() -> None:
    _app = QGuiApplication(sys.argv)  # QSvgRenderer and QPainter need a Gui application
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot parse {SVG}")
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(PNG)):
        raise SystemExit(f"cannot write {PNG}")
    print(f"wrote {PNG}")


if __name__ == "__main__":
    main()
