"""The image view: one document laid out at its ORIGINAL photo's geometry, zoomable and pannable.

Scene coordinates are the displayed (EXIF-turned) full-resolution photo, so zoom 1.0 is 100%
of the original whatever the preview's size. The preview sits inside a ``frame`` item that
holds stored full-resolution coordinates (scaled up from the thumbnail, clipped to the
original's size, turned by the orientation); later reconstructed tiles become more children
of that frame, at their stored positions, in a tile layer above the preview that key C hides.

The view only draws: which tiles to decode, and when, is ``reconstruction``'s job; it listens
to ``areaChanged`` and hands finished tiles back through ``add_tile``. Over the image it draws a
message, a notice and the small indicator of what is shown (Preview / Reconstructing /
Reconstructed, full size), in viewport coordinates; the whole viewport is repainted on every
change, so none of them can be left behind half-drawn where only part of the view was updated.

Comparison (``set_split``): the tile layer clips its tiles to the part of the photo right of a
vertical line on screen, so the upscaled preview shows on the left and the reconstruction on the
right of the same place; the line follows zoom and pan and can be dragged. With ``set_original``
the original photo (a plain image of the same size) shows left of the line instead of the preview.
While part of the photo is out of view, ``navigator`` maps where the view is (``navigator.py``).
"""

from __future__ import annotations

from collections.abc import Hashable

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from app.viewer.codec_bridge import ImageDocument, display_size, preview_scale
from app.viewer.colour import display_transform, for_display
from app.viewer.navigator import Navigator
from app.viewer.orientation import orientation_transform
from app.viewer.qimage import pixmap_of

MIN_ZOOM = 0.01
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
BACKGROUND = QColor(40, 40, 40)
MESSAGE_COLOUR = QColor(220, 220, 220)
NOTICE_BACKGROUND = QColor(0, 0, 0, 170)
INDICATOR_BACKGROUND = QColor(0, 0, 0, 120)
INDICATOR_TEXT = QColor(235, 235, 235, 200)
INDICATOR_MARGIN = 12
SPLIT_GRAB = 8  # viewport pixels either side of the comparison line where a press drags it
SPLIT_COLOUR = QColor(255, 255, 255, 200)


class ImageView(QGraphicsView):
    """Shows a document or a message. Signals: ``zoomChanged(zoom, fitted)``, ``stepRequested(offset)``,
    ``areaChanged()`` (the visible part of the photo or its scale on screen may have changed)."""

    zoomChanged = Signal(float, bool)
    stepRequested = Signal(int)
    areaChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(BACKGROUND)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)  # no stale overlays
        self._frame: QGraphicsRectItem | None = None
        self._tile_layer: QGraphicsRectItem | None = None
        self._tiles: dict[Hashable, QGraphicsPixmapItem] = {}
        self._tiles_visible = True
        self._colour = None  # the document's ICC profile -> sRGB transform (None: shown as stored)
        self._split: float | None = None  # comparison line at this fraction of the width; None: off
        self._original_layer: QGraphicsRectItem | None = None  # the original photo, left of the line
        self._dragging_split = False
        self._message = ""
        self._notice = ""
        self._indicator = ""
        self._fitted = True
        self.navigator = Navigator(self)  # the map of the photo while zoomed in

    # ------------------------------------------------------------------ content

    def set_document(self, document: ImageDocument) -> None:
        """Show ``document``'s preview at full geometry, fitted to the window."""
        self._clear()
        self._colour = display_transform(document.icc_profile)
        width, height = document.full_size
        frame = QGraphicsRectItem(0, 0, width, height)
        frame.setPen(QPen(Qt.PenStyle.NoPen))
        frame.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        frame.setTransform(orientation_transform(width, height, document.orientation))
        shown = pixmap_of(document.preview, self._colour)
        preview = QGraphicsPixmapItem(shown, frame)
        preview.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        preview.setScale(preview_scale(document))
        layer = QGraphicsRectItem(0, 0, width, height, frame)  # above the preview: drawn later
        layer.setPen(QPen(Qt.PenStyle.NoPen))
        layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)  # the comparison's clip
        layer.setVisible(self._tiles_visible)
        self.scene().addItem(frame)
        self._frame, self._tile_layer = frame, layer
        self.scene().setSceneRect(QRectF(0, 0, *display_size(width, height, document.orientation)))
        self.navigator.set_image(shown, document.orientation)
        self.fit()
        self._clip_tiles()

    def show_message(self, text: str) -> None:
        """Replace the image with a centred message (an error, or 'no images')."""
        self._clear()
        self._message = text
        self.scene().setSceneRect(QRectF())
        self.resetTransform()
        self.viewport().update()

    def message(self) -> str:
        return self._message

    def set_notice(self, text: str) -> None:
        """A few words over the bottom of the image (why it cannot get sharper); '' hides them.
        Unlike a message, the image stays; the next document clears the notice."""
        self._notice = text
        self.viewport().update()

    def notice(self) -> str:
        return self._notice

    def set_indicator(self, text: str) -> None:
        """The few words in the top-right corner saying which pixels are shown; '' hides them."""
        if text != self._indicator:
            self._indicator = text
            self.viewport().update()

    def indicator(self) -> str:
        return self._indicator

    def indicator_rect(self) -> QRectF:
        """Where the indicator is drawn, in viewport pixels (empty when there is none)."""
        if not self._indicator or self._message:
            return QRectF()
        metrics = self.fontMetrics()
        width, height = metrics.horizontalAdvance(self._indicator) + 16, metrics.height() + 8
        right = self.viewport().width() - INDICATOR_MARGIN
        return QRectF(right - width, INDICATOR_MARGIN, width, height)

    def has_image(self) -> bool:
        return self._frame is not None

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the displayed full-resolution geometry; (0, 0) with no image."""
        rect = self.sceneRect() if self._frame is not None else QRectF()
        return round(rect.width()), round(rect.height())

    def _clear(self) -> None:
        self.scene().clear()
        self._frame, self._tile_layer, self._tiles, self._original_layer = None, None, {}, None
        self._message = self._notice = ""
        self.navigator.set_image(None)
        self.viewport().update()

    # ------------------------------------------------------------------ reconstructed tiles

    def add_tile(self, key: Hashable, x: int, y: int, image: QImage) -> None:
        """Draw ``image`` over the preview with its top-left at stored full-resolution pixel (x, y)."""
        if self._tile_layer is None:
            return
        self.remove_tile(key)
        item = QGraphicsPixmapItem(QPixmap.fromImage(for_display(image, self._colour)), self._tile_layer)
        item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        item.setPos(x, y)
        self._tiles[key] = item

    def remove_tile(self, key: Hashable) -> None:
        item = self._tiles.pop(key, None)
        if item is not None:
            self.scene().removeItem(item)

    def has_tile(self, key: Hashable) -> bool:
        return key in self._tiles

    def tile_keys(self) -> list[Hashable]:
        """The keys of the tiles drawn now (each names the document it belongs to)."""
        return list(self._tiles)

    def set_tiles_visible(self, visible: bool) -> None:
        """Show the reconstruction (True) or the upscaled preview under it (False)."""
        self._tiles_visible = visible
        if self._tile_layer is not None:
            self._tile_layer.setVisible(visible)

    def tiles_visible(self) -> bool:
        return self._tiles_visible

    # ------------------------------------------------------------------ comparison

    def set_split(self, fraction: float | None) -> None:
        """Compare: the preview left of a line at ``fraction`` of the view's width, the
        reconstruction right of it; None shows the reconstruction everywhere."""
        self._split = None if fraction is None else min(max(fraction, 0.0), 1.0)
        self._clip_tiles()
        self.viewport().update()

    def split(self) -> float | None:
        return self._split

    def set_original(self, image: QImage | None, icc_profile: bytes | None = None) -> None:
        """Compare with the original photo: ``image`` (stored orientation, the document's full size)
        left of the line instead of the preview; None: back to the preview. The next document drops it."""
        if self._original_layer is not None:
            self.scene().removeItem(self._original_layer)
            self._original_layer = None
        if image is not None and self._frame is not None:
            layer = QGraphicsRectItem(self._frame.rect(), self._frame)  # above the tiles: drawn later
            layer.setPen(QPen(Qt.PenStyle.NoPen))
            layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
            layer.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
            pixmap = QPixmap.fromImage(for_display(image, display_transform(icc_profile)))
            QGraphicsPixmapItem(pixmap, layer).setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self._original_layer = layer
        self._clip_tiles()
        self.viewport().update()

    def has_original(self) -> bool:
        return self._original_layer is not None

    def _split_x(self) -> float:
        return (self._split or 0.0) * self.viewport().width()

    def _clip_tiles(self) -> None:
        """The tile layer's shape (its children are clipped to it): the whole photo, or the part
        right of the comparison line, in the frame's stored coordinates."""
        if self._tile_layer is None:
            return
        full = self._frame.rect()
        if self._split is None:
            self._tile_layer.setRect(full)
            if self._original_layer is not None:
                self._original_layer.setRect(QRectF())  # not comparing: the original is hidden
            return
        left = self.mapToScene(QPoint(round(self._split_x()), 0)).x()
        scene = self.sceneRect()
        right_part = QRectF(left, scene.top(), max(0.0, scene.right() - left), scene.height())
        left_part = QRectF(scene.left(), scene.top(), max(0.0, left - scene.left()), scene.height())
        self._tile_layer.setRect(self._frame.mapRectFromScene(right_part).intersected(full))
        if self._original_layer is not None:
            self._original_layer.setRect(self._frame.mapRectFromScene(left_part).intersected(full))

    def visible_area(self) -> QRectF:
        """The part of the displayed photo (scene coordinates) inside the viewport; empty if none."""
        if self._frame is None:
            return QRectF()
        shown = self.mapToScene(self.viewport().rect()).boundingRect()
        return shown.intersected(self.sceneRect())

    def screen_scale(self) -> float:
        """Device pixels per original-photo pixel: the zoom times the screen's pixel ratio (HiDPI)."""
        return self.zoom() * self.viewport().devicePixelRatioF()

    # ------------------------------------------------------------------ zoom

    def zoom(self) -> float:
        """Screen pixels per original-photo pixel (1.0 = 100%)."""
        return self.transform().m11()

    def is_fitted(self) -> bool:
        return self._fitted

    def fit_zoom(self) -> float:
        """The zoom that shows the whole photo; never above 100%, so small images stay sharp."""
        width, height = self.image_size()
        if not width or not height:
            return 1.0
        viewport = self.viewport().size()
        return min(viewport.width() / width, viewport.height() / height, 1.0)

    def fit(self) -> None:
        self._fitted = True
        self._apply_zoom(self.fit_zoom(), None)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` keeping the photo point under ``anchor`` (viewport pixels) in place."""
        self._fitted = False
        self._apply_zoom(zoom, anchor)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom() * factor, anchor)

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP)

    def toggle_fit(self, anchor: QPointF | None = None) -> None:
        """Fitted -> 100% (around ``anchor``); anything else -> fitted."""
        if self._fitted:
            self.set_zoom(1.0, anchor)
        else:
            self.fit()

    def _apply_zoom(self, zoom: float, anchor: QPointF | None) -> None:
        if not self.has_image():
            return
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        anchor = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        fixed = self.mapToScene(anchor.toPoint())
        self.setTransform(QTransform.fromScale(zoom, zoom))
        moved = self.mapFromScene(fixed) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._clip_tiles()
        self.navigator.refresh()
        self.zoomChanged.emit(zoom, self._fitted)
        self.areaChanged.emit()

    # ------------------------------------------------------------------ events

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
        self._clip_tiles()
        self.navigator.refresh()
        self.areaChanged.emit()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._clip_tiles()
        self.navigator.refresh()
        self.areaChanged.emit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps and self.has_image():
            self.zoom_by(ZOOM_STEP**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A press on the comparison line drags it; anywhere else pans as usual."""
        near_line = self._split is not None and abs(event.position().x() - self._split_x()) <= SPLIT_GRAB
        if near_line and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_split = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            self.set_split(event.position().x() / max(1, self.viewport().width()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            self._dragging_split = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.toggle_fit(event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Left/Right step through images while the whole photo is in view, else they scroll."""
        step = {Qt.Key.Key_Right: 1, Qt.Key.Key_Left: -1}.get(Qt.Key(event.key()))
        plain = event.modifiers() == Qt.KeyboardModifier.NoModifier
        if step and plain and (self._fitted or not self.has_image()):
            self.stepRequested.emit(step)
            event.accept()
            return
        super().keyPressEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        indicator = self.indicator_rect()
        comparing = self._split is not None and self._frame is not None
        if not (self._message or self._notice or comparing or not indicator.isEmpty()):
            return
        painter.save()
        painter.resetTransform()
        if comparing:
            self._draw_split(painter)
        if not indicator.isEmpty():
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(INDICATOR_BACKGROUND)
            painter.drawRoundedRect(indicator, 6, 6)
            painter.setPen(INDICATOR_TEXT)
            painter.setFont(self.font())
            painter.drawText(indicator, Qt.AlignmentFlag.AlignCenter, self._indicator)
        if self._message:
            painter.setPen(MESSAGE_COLOUR)
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.2)
            painter.setFont(font)
            area = self.viewport().rect().adjusted(24, 24, -24, -24)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        if self._notice:
            flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextWordWrap
            area = self.viewport().rect().adjusted(16, 16, -16, -16)
            text = painter.boundingRect(area, flags, self._notice)
            painter.fillRect(text.adjusted(-8, -5, 8, 5), NOTICE_BACKGROUND)
            painter.setPen(MESSAGE_COLOUR)
            painter.drawText(area, flags, self._notice)
        painter.restore()

    def _draw_split(self, painter: QPainter) -> None:
        """The comparison line, its handle and what is on either side."""
        x, height = self._split_x(), self.viewport().height()
        painter.setPen(QPen(SPLIT_COLOUR, 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, height))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(INDICATOR_BACKGROUND)
        painter.drawEllipse(QPointF(x, height / 2), 10, 10)
        metrics = self.fontMetrics()
        top = INDICATOR_MARGIN + metrics.height() + 16  # below the indicator
        first = "Original" if self._original_layer is not None else "Preview"
        for text, left in ((first, x - 12 - metrics.horizontalAdvance(first) - 16), ("Reconstruction", x + 12)):
            box = QRectF(left, top, metrics.horizontalAdvance(text) + 16, metrics.height() + 8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(INDICATOR_BACKGROUND)
            painter.drawRoundedRect(box, 6, 6)
            painter.setPen(INDICATOR_TEXT)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
