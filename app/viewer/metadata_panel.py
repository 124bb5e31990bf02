"""The metadata panel: a read-only, selectable page of what ``metadata`` says about the image shown."""

from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import QSize, QUrl
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.viewer.histogram import Histogram
from app.viewer.metadata import Metadata

HISTOGRAM_URL = "histogram:preview"
HISTOGRAM_SIZE = (256, 72)

STYLE = """
<style>
  h3 { margin: 0 0 6px 0; }
  h4 { margin: 12px 0 4px 0; }
  td.label { color: #8a8a8a; padding-right: 10px; white-space: nowrap; vertical-align: top; }
  table.grid td { padding: 0 4px; text-align: right; font-family: monospace; }
  .error { color: #d04040; }
  p.capture { margin: 0 0 6px 0; font-weight: bold; }
</style>
"""


def metadata_html(metadata: Metadata | None) -> str:
    if metadata is None:
        return "<p>No image.</p>"
    parts = [STYLE, f"<h3>{escape(metadata.title)}</h3>"]
    if metadata.capture:
        parts.append(f"<p class='capture'>{escape(metadata.capture)}</p>")
    if metadata.histogram is not None:
        parts.append(f"<p><img src='{HISTOGRAM_URL}' width='{HISTOGRAM_SIZE[0]}' height='{HISTOGRAM_SIZE[1]}'></p>")
    if metadata.error:
        parts.append(f"<p class='error'>Cannot open: {escape(metadata.error)}</p>")
    parts.append(_rows(metadata.rows))
    for title, grid in metadata.tables:
        parts.append(f"<h4>{escape(title)}</h4>")
        cells = "".join("<tr>" + "".join(f"<td>{value}</td>" for value in row) + "</tr>" for row in grid)
        parts.append(f"<table class='grid' cellspacing='0'>{cells}</table>")
    if metadata.error is None:
        parts.append("<h4>EXIF</h4>")
        parts.append(_rows(metadata.exif) if metadata.exif else "<p>No EXIF data.</p>")
    return "".join(parts)


def _rows(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td class='label'>{escape(label)}</td><td>{escape(text)}</td></tr>" for label, text in rows)
    return f"<table cellspacing='0'>{body}</table>"


def histogram_image(histogram: Histogram, size: tuple[int, int] = HISTOGRAM_SIZE) -> QImage:
    """R, G and B counts drawn over each other (added up where they overlap), on a dark ground;
    a clipped end gets a bright bar at its edge."""
    width, height = size
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(28, 28, 28))
    counts = histogram.counts.astype(np.float64)
    top = max(1.0, float(np.sqrt(counts[:, 1:255]).max()))  # square root: the small counts stay visible
    painter = QPainter(image)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Plus)
    for channel, colour in enumerate((QColor(200, 60, 60), QColor(60, 180, 60), QColor(70, 110, 220))):
        painter.setPen(QPen(colour, 1))
        for x in range(width):
            value = min(1.0, float(np.sqrt(counts[channel, x * 256 // width])) / top)
            if value > 0:
                painter.drawLine(x, height - 1, x, height - 1 - round(value * (height - 1)))
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
    for share, x in ((histogram.any_shadows, 0), (histogram.any_highlights, width - 3)):
        if share >= 0.001:
            painter.fillRect(x, 0, 3, height, QColor(255, 80, 80))
    painter.end()
    return image


class MetadataPanel(QTextBrowser):
    """Shows one ``Metadata`` (``metadata`` holds it, for tests and callers)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setMinimumWidth(220)
        self.metadata: Metadata | None = None
        self.histogram: QImage | None = None
        self.show_metadata(None)

    def sizeHint(self) -> QSize:
        return QSize(340, super().sizeHint().height())  # room for a value on one line, and the grids

    def show_metadata(self, metadata: Metadata | None) -> None:
        self.metadata = metadata
        self.histogram = None if metadata is None or metadata.histogram is None else histogram_image(metadata.histogram)
        self.setHtml(metadata_html(metadata))

    def loadResource(self, kind: int, url: QUrl):
        """The histogram's picture for the page's ``<img>``."""
        if url.toString() == HISTOGRAM_URL and self.histogram is not None:
            return self.histogram
        return super().loadResource(kind, url)

    def text(self) -> str:
        return self.toPlainText()
