"""Zoom-triggered reconstruction: what to decode for the view, the cache, and the status.

Once the photo is shown larger than its preview's native scale (one preview pixel over more than
one device pixel), the missing tiles on screen are asked of the worker, grouped into pieces that
the decoder computes in one go (``TileGrid.pieces``), nearest the centre first, then a ring around
them; each piece comes back cut into tiles, which go into the cache and are drawn over the preview.
Only cached tiles in or near the view are drawn, so stepping back to a well-explored photo costs
a screenful of pixmaps, not thousands.
A file with a detail layer is reconstructed in two passes over the view: first its base (the
decoder from the thumbnail alone, the faster one), then with the layer, each tile replacing its
base tile as it arrives; the prefetch ring gets the detail pass only.
Tiles are decoded in stored coordinates and drawn in the view's stored-coordinate frame, so EXIF
orientation is Qt's business. Every answer carries the document's token: anything for an image
the user has left is dropped, so a tile can never appear on the wrong photo.
"""

from __future__ import annotations

import dataclasses
import math
import time

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from app.viewer.codec_bridge import (
    Box,
    ImageDocument,
    display_box_to_stored,
    has_detail_layer,
    preview_scale,
)
from app.viewer.describe import ReconstructionStatus
from app.viewer.image_view import ImageView
from app.viewer.qimage import to_qimage
from app.viewer.reconstruction_worker import ReconstructionWorker
from app.viewer.tile_cache import TileCache
from app.viewer.tile_grid import PIECE_LR, TILE_SIZE, TileGrid, TileKey

SETTLE_MS = 40  # wait for a burst of wheel or key events to settle before asking for tiles
FIRST_PIECE_CELLS = 4  # tiles per side of a view's first piece: 512 photo pixels, ~1/8 of a 1920x1080 view
PREFETCH_RING = 2  # tiles (256 photo pixels) around the visible ones decoded afterwards, so small pans are instant


def document_key(document: ImageDocument) -> tuple:
    """Tells documents apart in the cache: the same file, unchanged, shares its decoded tiles."""
    try:
        stat = document.path.stat()
        return (str(document.path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return (str(document.path), id(document))


class Reconstruction(QObject):
    """Drives ``view``'s tile layer for the document shown. Signals: ``statusChanged(ReconstructionStatus)``,
    ``failed(message)`` (the decoder cannot run for this document: the message says why)."""

    statusChanged = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        view: ImageView,
        *,
        weights_dir=None,
        tile_size: int = TILE_SIZE,
        cache: TileCache | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.view = view
        self.tile_size = tile_size
        self.prefetch_ring = PREFETCH_RING
        self.cache = cache if cache is not None else TileCache()
        self.worker = ReconstructionWorker(weights_dir, self)
        self.worker.decoderReady.connect(self._decoder_ready)
        self.worker.noted.connect(self._noted)
        self.worker.tilesDecoded.connect(self._tiles_decoded)
        self.worker.failed.connect(self._failed)
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.update)
        view.areaChanged.connect(self._settle.start)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.token = 0  # bumped for every document shown: answers for older tokens are stale
        self.document: ImageDocument | None = None
        self.key = None  # the document's cache key
        self._grid: TileGrid | None = None
        self._layered = False  # the document has a detail layer: a base pass, then the detail pass
        self._visible: list[TileKey] = []
        self._received = 0  # tiles received for this token (the worker skips later ones it already sent)
        self._started: float | None = None  # when the visible region was first asked for
        self.first_piece_seconds: float | None = None  # request to the first visible tile drawn, last view
        self._retry = False  # the last failure was the codec service stopping: the next look asks again
        self.status = ReconstructionStatus()

    # ------------------------------------------------------------------ requests from the window

    def set_document(self, document: ImageDocument | None) -> None:
        """The view now shows ``document`` (None: nothing or an error): drop the old work, show
        the tiles already cached for this one, and ask for more once the view settles."""
        self.token += 1
        self.worker.cancel(self.token)
        self._visible, self._received, self._started, self._retry = [], 0, None, False
        hyper = document is not None and document.is_hyperthumbnail
        self.document = document if hyper else None
        self._grid = TileGrid(*document.full_size, self.tile_size) if hyper else None
        self.key = document_key(document) if hyper else None
        self._layered = hyper and has_detail_layer(document)
        state = "none" if document is None else "preview" if hyper else "plain"
        self._publish(state=state, percent=0, reason=None, seconds=None, note=None)
        if hyper:
            area = self._visible_stored_box()
            if area is not None:
                self._draw_cached(self._keys(self._grid.covering(area, self.prefetch_ring)))
            self._settle.start()

    def set_shown(self, shown: bool) -> None:
        """Show the reconstruction (True) or the upscaled preview (False): key C."""
        self.view.set_tiles_visible(shown)
        self._publish(shown=shown)

    def shutdown(self) -> None:
        """Stop decoding and wait for the worker (the window is closing or the app quitting)."""
        self._settle.stop()
        self.token += 1
        self.worker.shutdown()

    # ------------------------------------------------------------------ scheduling

    def update(self) -> None:
        """Look at what the view shows now and ask the worker for the missing tiles."""
        if self.document is None or (self.status.state == "unavailable" and not self._retry):
            return
        area = self._visible_stored_box()
        if area is None or self.view.screen_scale() * preview_scale(self.document) <= 1.0 + 1e-6:
            self.worker.cancel(self.token)
            if self._layered:  # its detail layer is decoded in the background, ready for a zoom
                self.worker.prepare(self.token, self.document)
            self._visible, self._started = [], None
            self._publish(state="preview")
            return
        if self._retry:
            self._retry = False
            self._publish(state="reconstructing", reason=None)
        visible = self._grid.covering(area)
        near = self._grid.covering(area, self.prefetch_ring)
        self._visible = self._keys(visible)
        self.cache.touch(self._visible)
        self._draw_cached(self._keys(near))
        shown = set(visible)
        centre = ((area.y0 + area.y1) / 2, (area.x0 + area.x1) / 2)
        most = max(1, round(PIECE_LR * preview_scale(self.document)) // self.tile_size)
        missing = [c for c in visible if self._key(c) not in self.cache]
        passes = (
            [([c for c in missing if self._base_key(self._key(c)) not in self.cache], False)] if self._layered else []
        )
        passes += [(missing, True), ([c for c in near if c not in shown and self._key(c) not in self.cache], True)]
        pieces, detail = [], []
        for number, (cells, with_detail) in enumerate(passes):
            for r0, r1, c0, c1 in self._rectangles(cells, most, centre, first=number == 0):
                key = self._key if with_detail else (lambda cell: self._base_key(self._key(cell)))
                pieces.append([(key((r, c)), self._grid.box(r, c)) for r in range(r0, r1) for c in range(c0, c1)])
                detail.append(with_detail)
        if pieces:
            if self._started is None and any(key not in self.cache for key in self._visible):
                self._started, self.first_piece_seconds = time.perf_counter(), None
            self.worker.submit(self.token, self.document, pieces, self._received, detail)
        else:
            self.worker.cancel(self.token)
        self._publish_progress()

    def _rectangles(self, cells, most: int, centre, first: bool) -> list[tuple[int, int, int, int]]:
        """``TileGrid.pieces`` of ``cells``; for the first pass, a small piece at the centre comes
        first (``FIRST_PIECE_CELLS`` a side), so the first reconstructed pixels show well before a
        whole viewport's piece is decoded, and the rest of its piece follows at full size."""
        rectangles = self._grid.pieces(cells, most, centre)
        if not first or not rectangles:
            return rectangles
        r0, r1, c0, c1 = rectangles[0]
        if (r1 - r0) <= FIRST_PIECE_CELLS and (c1 - c0) <= FIRST_PIECE_CELLS:
            return rectangles
        block = [(r, c) for r in range(r0, r1) for c in range(c0, c1)]
        small = self._grid.pieces(block, FIRST_PIECE_CELLS, centre)[0]
        inside = {(r, c) for r in range(small[0], small[1]) for c in range(small[2], small[3])}
        return [
            small,
            *self._grid.pieces([cell for cell in block if cell not in inside], most, centre),
            *rectangles[1:],
        ]

    def _key(self, cell: tuple[int, int]) -> TileKey:
        return TileKey(self.key, *cell)

    def _keys(self, cells: list[tuple[int, int]]) -> list[TileKey]:
        return [TileKey(self.key, row, col) for row, col in cells]

    @staticmethod
    def _base_key(key: TileKey) -> TileKey:
        """The key of a tile's base reconstruction (a layered file's first pass)."""
        return TileKey((key.document, "base"), key.row, key.col)

    @staticmethod
    def _is_base(key: TileKey) -> bool:
        return isinstance(key.document, tuple) and len(key.document) == 2 and key.document[1] == "base"

    def _draw_cached(self, keys: list[TileKey]) -> None:
        """Draw the tiles of ``keys`` that are cached but not drawn yet (a base tile where the
        tile itself is not there yet)."""
        for key in keys:
            if self.view.has_tile(key):
                continue
            pixels = self.cache.get(key)
            if pixels is not None:
                self._draw(key, pixels)
                self.view.remove_tile(self._base_key(key))
            elif self._layered and not self.view.has_tile(self._base_key(key)):
                base = self.cache.get(self._base_key(key))
                if base is not None:
                    self._draw(self._base_key(key), base)

    def _visible_stored_box(self) -> Box | None:
        """The stored-coordinate pixels on screen (the view's area turned back by the orientation)."""
        rect = self.view.visible_area()
        if rect.isEmpty():
            return None
        box = Box(math.floor(rect.top()), math.ceil(rect.bottom()), math.floor(rect.left()), math.ceil(rect.right()))
        return display_box_to_stored(box, *self.document.full_size, self.document.orientation)

    # ------------------------------------------------------------------ answers from the worker

    def _decoder_ready(self, token: int, device: str) -> None:
        self._publish(device=device)

    def _tiles_decoded(self, token: int, tiles: list, seconds: float) -> None:
        if token != self.token:
            return  # for an image the user has left
        self._received += len(tiles)
        for key, pixels in tiles:
            if self._is_base(key) and TileKey(key.document[0], key.row, key.col) in self.cache:
                continue  # its detail tile is here already
            for dropped in self.cache.put(key, pixels):
                self.view.remove_tile(dropped)
            self._draw(key, pixels)
            if not self._is_base(key):
                self.view.remove_tile(self._base_key(key))
                self.cache.discard(self._base_key(key))
        if self._started is not None and self.first_piece_seconds is None:
            shown = {k for v in self._visible for k in (v, self._base_key(v))}  # a visible tile, either pass
            if any(key in shown for key, _ in tiles):
                self.first_piece_seconds = time.perf_counter() - self._started  # the view's first piece
        self._publish_progress()

    def _noted(self, token: int, note: str) -> None:
        if token == self.token:
            self._publish(note=note)

    def _failed(self, token: int, message: str, retry: bool) -> None:
        """The decoder cannot run for this document (``retry`` False: not asked again for it),
        or the codec service stopped (``retry``: the next change of view asks again, restarting it)."""
        if token != self.token:
            return
        self.worker.cancel(self.token)
        self._started = None
        self._retry = retry
        self._publish(state="unavailable", reason=message)
        self.failed.emit(message)

    def _draw(self, key: TileKey, pixels) -> None:
        box = self._grid.box(key.row, key.col)
        self.view.add_tile(key, box.x0, box.y0, to_qimage(pixels))

    # ------------------------------------------------------------------ status

    def _publish_progress(self) -> None:
        if not self._visible:
            return
        ready = [key in self.cache for key in self._visible]
        if all(ready) and self._started is not None:
            self._publish(seconds=time.perf_counter() - self._started)
            self._started = None
        if all(ready):
            self._publish(state="full", percent=100)
            return
        based = [r or self._base_key(key) in self.cache for key, r in zip(self._visible, ready)]
        if self._layered and all(based):  # the base is shown everywhere: the detail pass is running
            self._publish(state="detailing", percent=min(99, self._percent_of_view(ready)))
        else:
            self._publish(state="reconstructing", percent=min(99, self._percent_of_view(based)))

    def _percent_of_view(self, ready: list[bool]) -> int:
        """How much of the visible area (in photo pixels, not tiles: edge tiles count by their
        visible part) is reconstructed."""
        area = self._visible_stored_box()
        total = (area.x1 - area.x0) * (area.y1 - area.y0) if area is not None else 0
        if total <= 0:
            return 0
        done = 0
        for key, cached in zip(self._visible, ready):
            if cached:
                box = self._grid.box(key.row, key.col)
                done += max(0, min(box.x1, area.x1) - max(box.x0, area.x0)) * max(
                    0, min(box.y1, area.y1) - max(box.y0, area.y0)
                )
        return 100 * done // total

    def _publish(self, **changes) -> None:
        status = dataclasses.replace(self.status, **changes)
        if status != self.status:
            self.status = status
            self.statusChanged.emit(status)
