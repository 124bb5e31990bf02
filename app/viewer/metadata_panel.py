"""The metadata panel: a read-only, selectable page of what ``metadata`` says about the image shown."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.viewer.metadata import Metadata

STYLE = """
<style>
  h3 { margin: 0 0 6px 0; }
  h4 { margin: 12px 0 4px 0; }
  td.label { color: #8a8a8a; padding-right: 10px; white-space: nowrap; vertical-align: top; }
  table.grid td { padding: 0 4px; text-align: right; font-family: monospace; }
  .error { color: #d04040; }
</style>
"""


def metadata_html(metadata: Metadata | None) -> str:
    if metadata is None:
        return "<p>No image.</p>"
    parts = [STYLE, f"<h3>{escape(metadata.title)}</h3>"]
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


class MetadataPanel(QTextBrowser):
    """Shows one ``Metadata`` (``metadata`` holds it, for tests and callers)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setMinimumWidth(220)
        self.metadata: Metadata | None = None
        self.show_metadata(None)

    def sizeHint(self) -> QSize:
        return QSize(340, super().sizeHint().height())  # room for a value on one line, and the grids

    def show_metadata(self, metadata: Metadata | None) -> None:
        self.metadata = metadata
        self.setHtml(metadata_html(metadata))

    def text(self) -> str:
        return self.toPlainText()
