"""The navigator: a small map of the whole photo in the view's corner while zoomed in.

Why: at 100% of a 24 MP photo the window shows a twelfth of it, and a photographer checking
focus wants to know where they are and to jump elsewhere without zooming out. The map draws the
document's preview (already in memory: no decoding) with a frame around the visible part; a click
or a drag on it moves the view there. It shows only while part of the photo is out of view.

It lives on the view's viewport as a plain child widget (not a scene item), so it stays put
while the scene pans and zooms, and the view tells it what changed (``refresh``).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from app.viewer.orientation import orientation_transform

MAP_SIDE = 180  # the map's longer side, in viewport pixels
MARGIN = 12
FRAME_COLOUR = QColor(255, 255, 255, 230)
SHADE = QColor(0, 0, 0, 110)  # over the part of the map that is out of view
BORDER = QColor(0, 0, 0, 160)


class Navigator(QWidget):
    """Map of the photo on ``view``'s viewport; ``view`` is an ``image_view.ImageView``."""

    def __init__(self, view):
        super().__init__(view.viewport())
        self._view = view
        self._pixmap: QPixmap | None = None
        self._enabled = True
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Where the view is in the photo: click or drag to move there (N hides the map)")
        self.hide()

    # ------------------------------------------------------------------ state

    def set_image(self, picture: QPixmap | None, orientation: int = 1) -> None:
        """The photo's preview as stored (the view's pixmap), and its EXIF orientation; None: no
        photo, no map. The preview is made small first and turned after (it may be 64 MP)."""
        if picture is None or picture.isNull():
            self._pixmap = None
        else:
            turned = orientation in (5, 6, 7, 8)  # a quarter turn swaps the sides
            upright = QSize(picture.height(), picture.width()) if turned else picture.size()
            size = upright.scaled(MAP_SIDE, MAP_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
            stored = size.transposed() if turned else size
            small = picture.scaled(
                stored, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self._pixmap = small.transformed(orientation_transform(small.width(), small.height(), orientation))
            self.setFixedSize(self._pixmap.size() + QSize(2, 2))
        self.refresh()

    def set_enabled_by_user(self, enabled: bool) -> None:
        """The View menu's switch: off keeps the map hidden whatever the zoom."""
        self._enabled = enabled
        self.refresh()

    def wanted(self) -> bool:
        """Whether the map should show now: a photo, the user's switch on, part of it out of view."""
        if self._pixmap is None or not self._enabled or not self._view.has_image():
            return False
        scene, shown = self._view.sceneRect(), self._view.visible_area()
        return shown.width() < scene.width() - 1 or shown.height() < scene.height() - 1

    def refresh(self) -> None:
        """Show or hide, keep the bottom-right corner, redraw the frame (after a zoom, pan or resize)."""
        if not self.wanted():
            self.hide()
            return
        viewport = self._view.viewport()
        self.move(viewport.width() - self.width() - MARGIN, viewport.height() - self.height() - MARGIN)
        self.show()
        self.raise_()
        self.update()

    def frame_rect(self) -> QRectF:
        """The visible part of the photo, in the map's own pixels."""
        scene = self._view.sceneRect()
        if self._pixmap is None or scene.isEmpty():
            return QRectF()
        sx, sy = self._pixmap.width() / scene.width(), self._pixmap.height() / scene.height()
        shown = self._view.visible_area()
        return QRectF(
            1 + (shown.x() - scene.x()) * sx, 1 + (shown.y() - scene.y()) * sy, shown.width() * sx, shown.height() * sy
        )

    # ------------------------------------------------------------------ drawing and input

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap is None:
            return
        painter = QPainter(self)
        painter.setPen(QPen(BORDER, 1))
        painter.drawRect(QRectF(0.5, 0.5, self.width() - 1, self.height() - 1))
        painter.drawPixmap(1, 1, self._pixmap)
        frame = self.frame_rect()
        outside = QRectF(1, 1, self._pixmap.width(), self._pixmap.height())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(SHADE)
        for part in _around(outside, frame):
            painter.drawRect(part)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(FRAME_COLOUR, 1.5))
        painter.drawRect(frame.adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.move_view_to(event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.move_view_to(event.position())
        event.accept()

    def move_view_to(self, point: QPointF) -> None:
        """Centre the view on the photo point under ``point`` (the map's pixels)."""
        if self._pixmap is None:
            return
        scene = self._view.sceneRect()
        x = scene.x() + (point.x() - 1) * scene.width() / self._pixmap.width()
        y = scene.y() + (point.y() - 1) * scene.height() / self._pixmap.height()
        self._view.centerOn(QPointF(x, y))


def _around(outer: QRectF, inner: QRectF) -> list[QRectF]:
    """The parts of ``outer`` outside ``inner`` (four bands), for shading what is out of view."""
    inner = inner.intersected(outer)
    if inner.isEmpty():
        return [outer]
    return [
        part
        for part in (
            QRectF(outer.left(), outer.top(), outer.width(), inner.top() - outer.top()),
            QRectF(outer.left(), inner.bottom(), outer.width(), outer.bottom() - inner.bottom()),
            QRectF(outer.left(), inner.top(), inner.left() - outer.left(), inner.height()),
            QRectF(inner.right(), inner.top(), outer.right() - inner.right(), inner.height()),
        )
        if part.width() > 0 and part.height() > 0
    ]
