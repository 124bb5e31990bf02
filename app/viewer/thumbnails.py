"""The thumbnail strip: the playlist's files in a horizontal row, their pictures made lazily.

Pictures come from ``codec_bridge.strip_preview`` on a worker thread (one: the document loader
and the decoder need the other core), for the items on screen first, then a screenful either
side; nothing is made while the strip is hidden. Every scroll, resize or new folder replaces the
worker's queue, so only what the user can see (or is about to) gets made. The worker hands
back numpy pixels; QPixmaps are made here, on the GUI thread. Clicking an item emits
``chosen(row)``; the window's current image is the selected item, kept in view.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.viewer import codec_bridge
from app.viewer.codec_bridge import CodecError, StripPreview
from app.viewer.colour import display_transform, for_display
from app.viewer.memory import give_back_freed_memory
from app.viewer.newest_wins import NewestWins, describe_failure
from app.viewer.qimage import to_qimage

THUMB_SIZE = 96  # logical pixels on the longer side of a picture
PAD = 6  # around the picture inside an item
SPACING = 2  # between items
KEEP_PICTURES = 1500  # pictures kept (about 30 KB each); the least recently seen go first
SCHEDULE_MS = 30  # let a burst of scroll events settle before asking for pictures

PathRole = Qt.ItemDataRole.UserRole + 1
PixmapRole = Qt.ItemDataRole.UserRole + 2
HyperRole = Qt.ItemDataRole.UserRole + 3
ErrorRole = Qt.ItemDataRole.UserRole + 4

SCROLLBAR = 10  # height of the strip's slim scroll bar
STYLE = f"""
QListView {{ background: rgb(30, 30, 30); border: none; }}
QScrollBar:horizontal {{ background: rgb(30, 30, 30); height: {SCROLLBAR}px; margin: 0 2px 2px 2px; }}
QScrollBar::handle:horizontal {{ background: rgb(100, 100, 100); border-radius: 4px; min-width: 32px; }}
QScrollBar::handle:horizontal:hover {{ background: rgb(140, 140, 140); }}
QScrollBar::add-line:horizontal, QScrollBar::sub-line:horizontal {{ width: 0; }}
QScrollBar::add-page:horizontal, QScrollBar::sub-page:horizontal {{ background: none; }}
"""
PLACEHOLDER = QColor(58, 58, 58)
ERROR_COLOUR = QColor(220, 80, 70)
BADGE_COLOUR = QColor(35, 130, 220)
TEXT_COLOUR = QColor(200, 200, 200)


@dataclass(frozen=True)
class Picture:
    """What the strip knows of a file once its worker is done: a pixmap, or why there is none."""

    pixmap: QPixmap | None
    hyperthumbnail: bool = False
    full_size: tuple[int, int] | None = None
    error: str | None = None


def _make_picture(item: tuple[Path, int]) -> tuple[StripPreview | None, str | None]:
    """On the worker: (preview, None), or (None, why not) for a file that cannot be shown."""
    path, size = item
    try:
        preview = codec_bridge.strip_preview(path, size)
        if not preview.hyperthumbnail and path.suffix.lower() not in (".jpg", ".jpeg", ".jpe"):
            width, height = preview.full_size  # decoded whole, not at 1/8 by libjpeg: freed by now
            give_back_freed_memory(width * height * 3)
        return preview, None
    except CodecError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read {path.name}: {exc.strerror or exc}"


def _picture_failed(item: tuple[Path, int], exc: Exception) -> tuple[None, str]:
    return None, f"cannot read {item[0].name}: {describe_failure(exc)}"


class ThumbnailLoader(QObject):
    """Makes strip pictures on one worker thread. ``ready(path, StripPreview | None, error | None)``
    arrives on the GUI thread for every path taken from the queue."""

    ready = Signal(object, object, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._maker = NewestWins(_make_picture, _picture_failed, threads=1, key=lambda item: item[0], parent=self)
        self._maker.finished.connect(lambda item, made: self.ready.emit(item[0], *made))

    def want(self, paths: Iterable[Path], size: int) -> None:
        """Make pictures of ``paths`` (in this order), at most ``size`` device pixels a side,
        instead of whatever was asked for before."""
        self._maker.replace((path, size) for path in paths)

    def pending(self) -> list[Path]:
        return self._maker.pending()

    def idle(self) -> bool:
        return self._maker.idle()

    def shutdown(self) -> None:
        self._maker.shutdown()


class ThumbnailModel(QAbstractListModel):
    """The playlist's paths, and the pictures made of them so far (kept across folder changes)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.paths: list[Path] = []
        self._rows: dict[Path, list[int]] = {}
        self._pictures: OrderedDict[Path, Picture] = OrderedDict()

    def set_paths(self, paths: list[Path]) -> None:
        self.beginResetModel()
        self.paths = list(paths)
        self._rows = {}
        for row, path in enumerate(self.paths):
            self._rows.setdefault(path, []).append(row)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 -- Qt's signature
        return 0 if parent.isValid() else len(self.paths)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.paths):
            return None
        path = self.paths[index.row()]
        picture = self._pictures.get(path)
        if role == Qt.ItemDataRole.DisplayRole:
            return path.name
        if role == PathRole:
            return path
        if role == PixmapRole:
            return None if picture is None else picture.pixmap
        if role == HyperRole:
            return picture is not None and picture.hyperthumbnail
        if role == ErrorRole:
            return None if picture is None else picture.error
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(path, picture)
        return None

    def picture(self, path: Path) -> Picture | None:
        return self._pictures.get(path)

    def has_picture(self, path: Path) -> bool:
        return path in self._pictures

    def forget_picture(self, path: Path) -> None:
        """Drop ``path``'s picture (the file changed: a saved rotation); it is made again when seen."""
        if self._pictures.pop(path, None) is not None:
            for row in self._rows.get(path, []):
                index = self.index(row)
                self.dataChanged.emit(index, index)

    def set_picture(self, path: Path, picture: Picture) -> None:
        self._pictures[path] = picture
        self._pictures.move_to_end(path)
        while len(self._pictures) > KEEP_PICTURES:
            self._pictures.popitem(last=False)
        for row in self._rows.get(path, []):
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def touch(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if path in self._pictures:
                self._pictures.move_to_end(path)


def tooltip(path: Path, picture: Picture | None) -> str:
    if picture is None:
        return path.name
    if picture.error:
        return f"{path.name}\nCannot open: {picture.error}"
    width, height = picture.full_size or (0, 0)
    kind = "HyperThumbnail" if picture.hyperthumbnail else "Image"
    return f"{path.name}\n{kind} {width}x{height}"


class ThumbnailDelegate(QStyledItemDelegate):
    """Draws an item: its picture (or a placeholder, or an error mark), an 'HT' badge on
    HyperThumbnails, the file name, and a highlight on the current image."""

    def __init__(self, thumb_size: int, parent: QObject | None = None):
        super().__init__(parent)
        self.thumb_size = thumb_size

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.thumb_size + 2 * PAD, self.thumb_size + 2 * PAD + option.fontMetrics.height() + 2)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(1, 1, -1, -1)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            highlight = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
            fill = QColor(highlight)
            fill.setAlpha(110)
            painter.setPen(QPen(highlight, 2))
            painter.setBrush(fill)
            painter.drawRoundedRect(rect, 5, 5)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(255, 255, 255, 28))
            painter.drawRoundedRect(rect, 5, 5)
        area = QRect(option.rect.left() + PAD, option.rect.top() + PAD, self.thumb_size, self.thumb_size)
        pixmap, error = index.data(PixmapRole), index.data(ErrorRole)
        if pixmap is not None:
            size = pixmap.deviceIndependentSize().toSize()
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            painter.drawPixmap(target, pixmap)
            if index.data(HyperRole):
                self._badge(painter, target)
        elif error:
            painter.setPen(QPen(ERROR_COLOUR, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(area.adjusted(8, 8, -8, -8), 4, 4)
            font = QFont(option.font)
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.8)
            painter.setFont(font)
            painter.drawText(area.adjusted(8, 8, -8, -20), Qt.AlignmentFlag.AlignCenter, "!")
            font.setPointSizeF(option.font.pointSizeF() * 0.85)
            font.setBold(False)
            painter.setFont(font)
            painter.drawText(
                area.adjusted(8, 8, -8, -12), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, "unreadable"
            )
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(PLACEHOLDER)
            painter.drawRoundedRect(area.adjusted(4, 14, -4, -14), 3, 3)
        text_rect = QRect(
            option.rect.left() + 3, area.bottom() + 3, option.rect.width() - 6, option.fontMetrics.height()
        )
        name = option.fontMetrics.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.setFont(option.font)
        painter.setPen(
            palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText) if selected else TEXT_COLOUR
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, name)
        painter.restore()

    def _badge(self, painter: QPainter, picture: QRect) -> None:
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(10)
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance("HT") + 8
        badge = QRect(picture.right() - width - 2, picture.top() + 3, width, 14)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(BADGE_COLOUR)
        painter.drawRoundedRect(badge, 3, 3)
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "HT")


class ThumbnailStrip(QListView):
    """The strip. ``set_paths`` (the playlist), ``set_current(row)``; emits ``chosen(row)`` on a click."""

    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, thumb_size: int = THUMB_SIZE):
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.thumbnails = ThumbnailModel(self)
        self.setModel(self.thumbnails)
        self.setItemDelegate(ThumbnailDelegate(thumb_size, self))
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setUniformItemSizes(True)
        self.setSpacing(SPACING)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the image
        self.setMouseTracking(True)
        self.setStyleSheet(STYLE)
        cell = self.itemDelegate().sizeHint(self.viewOptions(), self.thumbnails.index(0))
        self.setFixedHeight(cell.height() + 2 * SPACING + SCROLLBAR + 2)
        self.loader = ThumbnailLoader(self)
        self.loader.ready.connect(self._ready)
        self._current = -1
        self._schedule = QTimer(self, singleShot=True, interval=SCHEDULE_MS)
        self._schedule.timeout.connect(self.request_visible)
        self.horizontalScrollBar().valueChanged.connect(lambda _value: self._schedule.start())  # not start(msec)
        self.clicked.connect(lambda index: self.chosen.emit(index.row()))

    def viewOptions(self) -> QStyleOptionViewItem:
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        return option

    # ------------------------------------------------------------------ the window's side

    def set_paths(self, paths: list[Path]) -> None:
        """Show ``paths`` (unchanged paths keep their pictures and scroll position)."""
        if list(paths) == self.thumbnails.paths:
            return
        self._current = -1
        self.thumbnails.set_paths(paths)
        self._schedule.start()

    def set_current(self, row: int) -> None:
        """Highlight ``row`` (the image shown) and scroll it into view; -1 highlights nothing."""
        self._current = row
        if not 0 <= row < self.thumbnails.rowCount():
            self.clearSelection()
            return
        index = self.thumbnails.index(row)
        self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        self._schedule.start()

    def current_row(self) -> int:
        return self._current

    def busy(self) -> bool:
        """Pictures are being asked for or made (tests wait for this to end)."""
        return self._schedule.isActive() or not self.loader.idle()

    def shutdown(self) -> None:
        self._schedule.stop()
        self.loader.shutdown()

    # ------------------------------------------------------------------ lazy pictures

    def visible_rows(self) -> list[int]:
        """The rows on screen (those partly in view included), left to right."""
        count = self.thumbnails.rowCount()
        if count == 0:
            return []
        self.executeDelayedItemsLayout()
        first = self.visualRect(self.thumbnails.index(0))
        if first.isEmpty():
            return []
        step = self.visualRect(self.thumbnails.index(1)).left() - first.left() if count > 1 else first.width()
        step = max(step, 1)
        area = self.viewport().rect()
        low = max(0, (area.left() - first.right()) // step)
        high = min(count - 1, (area.right() - first.left()) // step)
        return [row for row in range(low, high + 1) if self.visualRect(self.thumbnails.index(row)).intersects(area)]

    def request_visible(self) -> None:
        """Ask the worker for the pictures on screen, then a screenful either side; nothing if hidden."""
        if not self.isVisible():
            self.loader.want([], 0)
            return
        visible = self.visible_rows()
        if not visible:
            self.loader.want([], 0)
            return
        first, last, span = visible[0], visible[-1], len(visible)
        rows = list(visible)
        for distance in range(1, span + 1):
            rows += [row for row in (last + distance, first - distance) if 0 <= row < self.thumbnails.rowCount()]
        paths = [self.thumbnails.paths[row] for row in rows]
        self.thumbnails.touch(reversed(paths))  # what is on screen is the last to be forgotten
        size = round(self.thumb_size * self.devicePixelRatioF())
        self.loader.want([path for path in paths if not self.thumbnails.has_picture(path)], size)

    def refresh_picture(self, path: Path) -> None:
        """Make ``path``'s picture again from the file (it was changed on disk)."""
        self.thumbnails.forget_picture(path)
        self._schedule.start()

    def _ready(self, path: Path, preview: StripPreview | None, error: str | None) -> None:
        if preview is None:
            self.thumbnails.set_picture(path, Picture(None, error=error or "cannot be read"))
            return
        pixmap = QPixmap.fromImage(for_display(to_qimage(preview.rgb), display_transform(preview.icc_profile)))
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        self.thumbnails.set_picture(path, Picture(pixmap, preview.hyperthumbnail, preview.full_size))

    # ------------------------------------------------------------------ events

    def wheelEvent(self, event: QWheelEvent) -> None:
        """A vertical wheel scrolls the row sideways."""
        delta = event.angleDelta()
        if abs(delta.y()) > abs(delta.x()):
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() - round(delta.y() / 120 * (self.thumb_size + 2 * PAD)))
            event.accept()
            return
        super().wheelEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self, self._scroll_to_current)  # once the row is laid out at its size
        self._schedule.start()

    def _scroll_to_current(self) -> None:
        if 0 <= self._current < self.thumbnails.rowCount():
            self.scrollTo(self.thumbnails.index(self._current), QAbstractItemView.ScrollHint.EnsureVisible)

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self._schedule.start()  # finds the strip hidden and empties the worker's queue

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._schedule.start()
