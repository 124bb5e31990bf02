"""Runs the decoder off the GUI thread: one job at a time, the newest request winning.

The GUI thread only submits jobs (a document and the pieces it wants, nearest first) and
receives signals; the pool's thread asks the codec service for each piece (the decoder, its
weights and every tensor live in that process) and cuts the answer into cache tiles. A newer
request supersedes the running one at the next piece: the waiting call returns at once and the
service stops at its decoder's next tile. Signals carry the document's token, so the receiver
can drop anything meant for an image it has left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from app.codec.errors import user_message
from app.viewer import codec_bridge
from app.viewer.codec_bridge import (
    Box,
    Cancelled,
    CodecError,
    ImageDocument,
    ServiceStopped,
)
from app.viewer.describe import decoder_text
from app.viewer.tile_grid import TileKey

Tiles = tuple[tuple[TileKey, Box], ...]


@dataclass(frozen=True)
class DecodeJob:
    token: int  # which document (the requester's counter): results for another token are stale
    generation: int  # which request: a newer generation supersedes this one
    document: ImageDocument
    pieces: tuple[Tiles, ...]  # each decoded in one go: stored-coordinate tiles forming a rectangle, in order
    known: int  # how many tiles of this token the requester had received when it asked
    detail: tuple[bool, ...] = ()  # per piece: with the file's detail layer (default) or its base alone


def bounding_box(boxes) -> Box:
    boxes = list(boxes)
    return Box(min(b.y0 for b in boxes), max(b.y1 for b in boxes), min(b.x0 for b in boxes), max(b.x1 for b in boxes))


class ReconstructionWorker(QObject):
    """Signals (all queued to the GUI thread): ``decoderReady(token, text)`` (the runtime and
    device, for the status bar), ``noted(token, sentence)`` (e.g. the file's detail layer is damaged), ``tilesDecoded(token, [(key, pixels)], seconds)`` (one piece),
    ``failed(token, message, retry)`` (``retry``: the codec service stopped; asking again restarts it)."""

    decoderReady = Signal(int, str)
    noted = Signal(int, str)  # (token, sentence): something the user should know about this reconstruction
    tilesDecoded = Signal(int, object, float)
    failed = Signal(int, str, bool)

    def __init__(self, weights_dir=None, parent: QObject | None = None):
        super().__init__(parent)
        self.weights_dir = weights_dir
        self._pool = QThreadPool(self)  # a child: destroying it waits for the running job, never aborts
        self._pool.setMaxThreadCount(1)
        # Written by the GUI thread, read by the pool's (plain attribute reads and writes are atomic):
        self._generation = 0
        self._token = 0
        self._closing = False
        # Touched only on the pool's thread:
        self._decoder: codec_bridge.DocumentDecoder | None = None
        self._decoder_token = -1
        self._emitted: list[TileKey] = []  # tiles sent for ``_decoder_token``, in order

    # ------------------------------------------------------------------ GUI thread

    def submit(
        self,
        token: int,
        document: ImageDocument,
        pieces: list[list[tuple[TileKey, Box]]],
        known: int,
        detail: list[bool] | None = None,
    ) -> None:
        """Decode ``pieces`` of ``document``, dropping whatever was asked for before; ``detail``
        (per piece, default all True): False decodes the base reconstruction, without the layer."""
        self._generation += 1
        self._token = token
        job = DecodeJob(
            token,
            self._generation,
            document,
            tuple(tuple(piece) for piece in pieces),
            known,
            tuple(detail) if detail is not None else (True,) * len(pieces),
        )
        self._pool.clear()  # queued jobs are superseded; the running one notices at its next piece
        self._pool.start(lambda: self._run(job))

    def prepare(self, token: int, document: ImageDocument) -> None:
        """Open ``document``'s decoder before any piece is asked for (the photo is shown fitted):
        the codec service then decodes its detail layer in the background, so the first zoom
        finds it ready. Nothing is decoded here, and any later ``submit`` goes first."""
        self._token = token
        job = DecodeJob(token, self._generation, document, (), 0, ())
        self._pool.start(lambda: self._run(job))

    def cancel(self, token: int) -> None:
        """Stop all work; ``token`` is the document now shown (a different one also stops the
        piece being decoded and releases the old document's decoder)."""
        self._generation += 1
        self._token = token
        self._pool.clear()
        if self._decoder_token != token:
            self._pool.start(self._release)

    def shutdown(self) -> None:
        """Cancel everything and wait for the pool's thread (which stops waiting at once)."""
        self._closing = True
        self._generation += 1
        self._pool.clear()
        self._pool.waitForDone()
        self._drop_decoder()
        self._closing = False

    # ------------------------------------------------------------------ pool thread

    def _superseded(self, job: DecodeJob) -> bool:
        return self._closing or self._generation != job.generation

    def _release(self) -> None:
        if self._decoder_token != self._token:
            self._drop_decoder()

    def _drop_decoder(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
        self._decoder, self._decoder_token, self._emitted = None, -1, []

    def _run(self, job: DecodeJob) -> None:
        if self._superseded(job):
            return
        try:
            decoder = self._decoder_for(job)
            in_flight = set(self._emitted[job.known :])  # sent, but not yet seen by the requester
            for piece, with_detail in zip(job.pieces, job.detail, strict=True):
                wanted = [(key, box) for key, box in piece if key not in in_flight]
                if self._superseded(job):
                    return
                if not wanted:
                    continue
                area = bounding_box(box for _, box in wanted)
                start = time.perf_counter()
                pixels = decoder.decode(area, cancelled=lambda: self._superseded(job), detail=with_detail)
                tiles = [(key, _cut(pixels, box, area)) for key, box in wanted]
                self._emitted.extend(key for key, _ in tiles)
                self.tilesDecoded.emit(job.token, tiles, time.perf_counter() - start)
        except Cancelled:
            return
        except ServiceStopped as exc:
            self._decoder, self._decoder_token, self._emitted = None, -1, []  # it died with the service
            self.failed.emit(job.token, str(exc), True)
        except CodecError as exc:
            self.failed.emit(job.token, str(exc), False)
        except Exception as exc:  # noqa: BLE001 -- a thread boundary: any failure becomes a message, never a traceback
            self.failed.emit(job.token, user_message(exc, "the decoder"), False)

    def _decoder_for(self, job: DecodeJob) -> codec_bridge.DocumentDecoder:
        """The job's document's decoder: made here, on the worker, once per document."""
        if self._decoder_token != job.token or self._decoder is None:
            self._drop_decoder()  # free the old one first
            self._decoder = codec_bridge.open_decoder(job.document, self.weights_dir)
            self._decoder_token = job.token
            self.decoderReady.emit(job.token, decoder_text(self._decoder.device, getattr(self._decoder, "runtime", "")))
            for note in getattr(self._decoder, "notes", []):  # e.g. a damaged detail layer: the base is shown
                self.noted.emit(job.token, note)
        return self._decoder


def _cut(pixels: np.ndarray, box: Box, area: Box) -> np.ndarray:
    """Tile ``box`` out of the decoded ``area``, as an array of its own (the piece can go)."""
    inner = box.relative_to(area)
    return np.ascontiguousarray(pixels[inner.y0 : inner.y1, inner.x0 : inner.x1])
