"""Runs the decoder off the GUI thread: one job at a time, the newest request winning.

The GUI thread only submits jobs (a document, the tiles it wants, nearest first) and receives
signals; the decoder, the weights it loads and every tensor live on the pool's thread. A newer
request supersedes the running one at the next tile boundary; a request for another document
also stops the tile being decoded at the decoder's next ``cancelled`` check. Signals carry the
document's token, so the receiver can drop anything meant for an image it has left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.viewer import codec_bridge
from app.viewer.codec_bridge import Box, Cancelled, CodecError, ImageDocument
from app.viewer.tile_grid import TileKey


@dataclass(frozen=True)
class DecodeJob:
    token: int  # which document (the requester's counter): results for another token are stale
    generation: int  # which request: a newer generation supersedes this one
    document: ImageDocument
    tiles: tuple[tuple[TileKey, Box], ...]  # stored-coordinate boxes, in the order to decode them
    known: int  # how many tiles of this token the requester had received when it asked


class ReconstructionWorker(QObject):
    """Signals (all queued to the GUI thread): ``decoderReady(token, device)``,
    ``tileDecoded(token, key, pixels, seconds)``, ``failed(token, message)``."""

    decoderReady = Signal(int, str)
    tileDecoded = Signal(int, object, object, float)
    failed = Signal(int, str)

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

    def submit(self, token: int, document: ImageDocument, tiles: list[tuple[TileKey, Box]], known: int) -> None:
        """Decode ``tiles`` of ``document``, dropping whatever was asked for before."""
        self._generation += 1
        self._token = token
        job = DecodeJob(token, self._generation, document, tuple(tiles), known)
        self._pool.clear()  # queued jobs are superseded; the running one notices at its next tile
        self._pool.start(lambda: self._run(job))

    def cancel(self, token: int) -> None:
        """Stop all work; ``token`` is the document now shown (a different one also stops the
        tile being decoded and releases the old document's decoder)."""
        self._generation += 1
        self._token = token
        self._pool.clear()
        if self._decoder_token != token:
            self._pool.start(self._release)

    def shutdown(self) -> None:
        """Cancel everything and wait for the pool's thread to finish what it is doing."""
        self._closing = True
        self._generation += 1
        self._pool.clear()
        self._pool.waitForDone()
        self._decoder, self._decoder_token = None, -1
        self._closing = False

    # ------------------------------------------------------------------ pool thread

    def _superseded(self, job: DecodeJob) -> bool:
        return self._closing or self._generation != job.generation

    def _other_document(self, job: DecodeJob) -> bool:
        return self._closing or self._token != job.token

    def _release(self) -> None:
        if self._decoder_token != self._token:
            self._decoder, self._decoder_token = None, -1

    def _run(self, job: DecodeJob) -> None:
        if self._superseded(job):
            return
        try:
            decoder = self._decoder_for(job)
            in_flight = set(self._emitted[job.known :])  # sent, but not yet seen by the requester
            for key, box in job.tiles:
                if self._superseded(job):
                    return
                if key in in_flight:
                    continue
                start = time.perf_counter()
                pixels = decoder.decode(box, cancelled=lambda: self._other_document(job))
                self._emitted.append(key)
                self.tileDecoded.emit(job.token, key, pixels, time.perf_counter() - start)
        except Cancelled:
            return
        except CodecError as exc:
            self.failed.emit(job.token, str(exc))
        except Exception as exc:  # noqa: BLE001 -- a thread boundary: any failure becomes a message, never a traceback
            self.failed.emit(job.token, f"the decoder failed: {type(exc).__name__}: {exc}")

    def _decoder_for(self, job: DecodeJob) -> codec_bridge.DocumentDecoder:
        """The job's document's decoder: made here, on the worker, once per document."""
        if self._decoder_token != job.token:
            self._decoder, self._decoder_token, self._emitted = None, -1, []  # free the old one first
            self._decoder = codec_bridge.open_decoder(job.document, self.weights_dir)
            self._decoder_token = job.token
            self.decoderReady.emit(job.token, self._decoder.device)
        return self._decoder
