"""The codec service: a child process that does all of the viewer's torch work.

Why a process and not a thread: ``import torch`` spends about 250 ms inside its C extension
holding the GIL, so even on a worker thread it froze the GUI thread for that long; the model,
the runtime calibration and every decode would also contend for the GIL. The viewer starts
this service after its first paint (``service_client``) and never imports torch itself.

Requests arrive on a ``service_wire.Channel``. Each names a *lane* (the viewer thread that
sent it): a lane's requests run one after the other on a thread of their own, so one lane's
decodes never overlap (a decode the viewer gave up on finishes before the next one starts),
while the decoder and an export, from different lanes, run side by side as they did as
threads. ``("cancel", id)`` sets that request's flag, which the codec checks between tiles.

    viewer -> service   ("call", id, lane, op, args) [+ raw bytes: args["payload"]] | ("cancel", id) | ("quit",)
    service -> viewer   ("progress", id, done, total) | ("result", id, value)
                        | ("pixels", id, array_message) + the array's bytes
                        | ("error", id, kind, sentence)   kind: cancelled, failed, or a CodecError's ``kind``

Decoders (one per document) and loaded photos (one per export) stay here; the viewer holds
their numbers. On ``quit`` or when the viewer goes away, every request is cancelled and the
process exits once no file is being written (a cancelled write removes its temporary file).

This module imports neither Qt nor torch at import time (the viewer imports it to name the
process's entry point); the codec is imported by the service's own threads. The modules named
in ``HYPERTHUMB_SERVICE_PRELOAD`` (comma-separated) are imported first: the viewer's tests use
it to hold the encoder at a known point, which they can no longer do by patching their own
process.
"""

from __future__ import annotations

import importlib
import itertools
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from app.viewer.service_wire import Channel, array_message

PRELOAD_ENV = "HYPERTHUMB_SERVICE_PRELOAD"
LANE_IDLE_S = 60.0  # a lane's thread ends after this long without requests
QUIT_GRACE_S = 3.0  # how long a quit waits for a cancelled export to remove its temporary file

_INLINE = {"close_decoder", "release_photo"}  # cheap bookkeeping, done on the receiving thread
_WHAT_FAILED = {"open_decoder": "the decoder", "decode": "the decoder", "load_photo": "loading the photo",
                "estimate_size": "the size estimate", "encode_photo": "the encoder", "convert_photo": "the encoder",
                "weights_status": "the weights check"}  # fmt: skip


def serve(sock) -> None:
    """The child process's entry point (``multiprocessing`` spawn target)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in the terminal is the viewer's to handle
    for name in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
        importlib.import_module(name.strip())
    Service(Channel(sock)).run()


class Service:
    def __init__(self, channel: Channel):
        self.channel = channel
        self._lanes: dict[object, queue.Queue] = {}
        self._lanes_lock = threading.Lock()
        self._flags: dict[int, threading.Event] = {}  # request id -> its cancel flag
        self._flags_lock = threading.Lock()
        self._writing = 0  # encode_photo calls running (a quit waits for them)
        self._writing_lock = threading.Lock()
        self._codecs: dict[tuple, object] = {}
        self._codecs_lock = threading.Lock()
        self._decoders: dict[int, object] = {}
        self._photos: dict[int, object] = {}
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------------ receiving

    def run(self) -> None:
        while True:
            try:
                message, payload = self.channel.recv()
            except (EOFError, OSError):
                break  # the viewer is gone
            kind = message[0]
            if kind == "quit":
                break
            if kind == "cancel":
                with self._flags_lock:
                    flag = self._flags.get(message[1])
                if flag is not None:
                    flag.set()
            elif kind == "call":
                rid, lane, op, args = message[1:]
                if payload is not None:
                    args["payload"] = payload
                self._dispatch(rid, lane, op, args)
        self._quit()

    def _dispatch(self, rid: int, lane, op: str, args: dict) -> None:
        flag = threading.Event()
        with self._flags_lock:
            self._flags[rid] = flag
        if op in _INLINE:
            self._run(rid, op, args, flag)
            return
        with self._lanes_lock:
            jobs = self._lanes.get(lane)
            if jobs is None:
                jobs = self._lanes[lane] = queue.Queue()
                threading.Thread(target=self._lane, args=(lane, jobs), daemon=True, name=f"lane-{lane}").start()
            jobs.put((rid, op, args, flag))

    def _lane(self, lane, jobs: queue.Queue) -> None:
        while True:
            try:
                job = jobs.get(timeout=LANE_IDLE_S)
            except queue.Empty:
                with self._lanes_lock:
                    if jobs.empty():  # nothing was queued while the lock was free: end this lane
                        del self._lanes[lane]
                        return
                continue
            self._run(*job)

    def _quit(self) -> None:
        with self._flags_lock:
            for flag in self._flags.values():
                flag.set()
        deadline = time.monotonic() + QUIT_GRACE_S
        while self._writing and time.monotonic() < deadline:
            time.sleep(0.01)
        self.channel.close()
        os._exit(0)  # lanes may be inside a decode tile: no need to wait for them

    # ------------------------------------------------------------------ running one request

    def _run(self, rid: int, op: str, args: dict, flag: threading.Event) -> None:
        from app.codec.errors import CodecError, user_message
        from app.codec.files.tiling import Cancelled

        def progress(done: int, total: int) -> None:
            self._send(("progress", rid, done, total))

        try:
            if flag.is_set():
                raise Cancelled()
            handler = getattr(self, f"_op_{op}")
            handler(rid, args, progress=progress, cancelled=flag.is_set)
        except Cancelled:
            self._send(("error", rid, "cancelled", "cancelled"))
        except Exception as exc:  # noqa: BLE001 -- a process boundary: any failure becomes a sentence
            kind = (
                exc.kind
                if isinstance(exc, CodecError)
                else "codec"
                if isinstance(exc, OSError | MemoryError)
                else "failed"
            )
            self._send(("error", rid, kind, user_message(exc, _WHAT_FAILED.get(op, f"the codec service's {op}"))))
        finally:
            with self._flags_lock:
                self._flags.pop(rid, None)

    def _send(self, message, payload=None) -> None:
        try:
            self.channel.send(message, payload)
        except OSError:
            pass  # the viewer is gone; the receiving thread ends the process

    def _reply(self, rid: int, value) -> None:
        self._send(("result", rid, value))

    def _codec(self, weights_dir):
        """One ``Codec`` per weights folder (and device setting), so models load once."""
        from app.codec.api import Codec
        from app.codec.api import weights_dir as resolve

        key = (resolve(weights_dir).resolve(), os.environ.get("HYPERTHUMB_DEVICE", ""))
        with self._codecs_lock:
            if key not in self._codecs:
                self._codecs[key] = Codec(weights_dir=key[0], calibrate_in_background=True)  # never hold a view
            return self._codecs[key]

    # ------------------------------------------------------------------ operations

    def _op_weights_status(self, rid, args, **_):
        """The weights check; when the weights are usable, the decoder runtime is then chosen
        (calibrated once per machine) on this lane, so the first zoom does not wait for it."""
        from app.codec.api import installed_weights_status

        status = installed_weights_status(args.get("weights_dir"))
        self._reply(rid, status)
        if status is None and args.get("prepare", True):
            try:
                codec = self._codec(args.get("weights_dir"))
                codec.decoder_runtime(codec.weights())
            except Exception:  # noqa: BLE001 -- a head start only: the first decode reports any failure
                pass

    def _op_info(self, rid, args, **_):
        import torch

        self._reply(
            rid,
            {
                "pid": os.getpid(),
                "torch_threads": torch.get_num_threads(),
                "python": sys.version.split()[0],
                "torch": str(torch.__version__),
            },
        )

    def _op_open_decoder(self, rid, args, **_):
        """``thumbnail`` arrives without pixels; its YCbCr samples follow as the raw payload."""
        import dataclasses

        thumbnail = args["thumbnail"]
        width, height = thumbnail.marker.thumbnail_size
        thumbnail = dataclasses.replace(thumbnail, ycbcr=args["payload"].reshape(height, width, 3))
        codec = self._codec(args.get("weights_dir"))
        reconstructor = codec.reconstructor(thumbnail)
        number = next(self._numbers)
        self._decoders[number] = reconstructor
        self._reply(
            rid,
            {
                "decoder": number,
                "device": codec.device.type,
                "runtime": reconstructor.runtime.name,
                "detail": reconstructor.detail is not None,
                "notes": list(reconstructor.notes),
            },
        )
        if reconstructor.detail is not None:
            threading.Thread(
                target=self._prefetch_detail, args=(number, reconstructor), daemon=True, name=f"detail-{number}"
            ).start()

    def _prefetch_detail(self, number: int, reconstructor) -> None:
        """Decode the photo's whole detail latent while it is shown fitted, so the first zoom pays
        only for the decoder; stops when the decoder is closed (another photo) or the service quits."""
        from app.codec.files.tiling import Cancelled

        try:
            reconstructor.prefetch_detail(cancelled=lambda: self._decoders.get(number) is not reconstructor)
        except Cancelled:
            pass
        except Exception:  # noqa: BLE001 -- a damaged tile is noted when a region needs it; nothing to say here
            pass

    def _op_decode(self, rid, args, cancelled, **_):
        from app.codec.files.tiling import Box

        reconstructor = self._decoders.get(args["decoder"])
        if reconstructor is None:
            from app.codec.errors import CodecError

            raise CodecError("this photo's decoder was closed; open the photo again")
        options = {"tile": args["tile"]} if args.get("tile") else {}
        options["detail"] = args.get("detail", True)
        started = time.perf_counter()
        pixels = reconstructor.decode(Box(*args["box"]), cancelled=cancelled, **options)
        seconds = time.perf_counter() - started
        self._send(("pixels", rid, seconds, array_message(pixels)), pixels)

    def _op_close_decoder(self, rid, args, **_):
        self._decoders.pop(args["decoder"], None)
        self._reply(rid, None)

    def _op_load_photo(self, rid, args, progress, cancelled):
        photo = self._codec(args.get("weights_dir")).load_photo(
            Path(args["path"]), progress=progress, cancelled=cancelled
        )
        number = next(self._numbers)
        self._photos[number] = photo
        height, width = photo.rgb.shape[:2]
        self._reply(
            rid,
            {"photo": number, "size": (width, height), "orientation": photo.orientation, "notes": list(photo.notes)},
        )

    def _photo(self, number: int):
        from app.codec.errors import CodecError

        photo = self._photos.get(number)
        if photo is None:
            raise CodecError("the photo is no longer loaded; open the export again")
        return photo

    def _op_estimate_size(self, rid, args, cancelled, **_):
        options = {"sample_pixels": args["sample_pixels"]} if args.get("sample_pixels") else {}
        estimate = self._codec(args.get("weights_dir")).estimate_size(
            self._photo(args["photo"]),
            args["rate"],
            strip_gps=args["strip_gps"],
            keep_exif=args["keep_exif"],
            cancelled=cancelled,
            **options,
        )
        self._reply(rid, estimate)

    def _op_encode_photo(self, rid, args, progress, cancelled):
        with self._writing_lock:
            self._writing += 1
        try:
            result = self._codec(args.get("weights_dir")).encode_photo(
                self._photo(args["photo"]),
                Path(args["destination"]),
                rate=args["rate"],
                strip_gps=args["strip_gps"],
                keep_exif=args["keep_exif"],
                force=args["force"],
                progress=progress,
                cancelled=cancelled,
            )
        finally:
            with self._writing_lock:
                self._writing -= 1
        self._reply(
            rid,
            {
                "path": str(result.path),
                "file_size": result.file_size,
                "full_size": tuple(result.full_size),
                "notes": list(result.notes),
            },
        )

    def _op_convert_photo(self, rid, args, progress, cancelled):
        """One photo of the viewer's Export Folder by the batch engine's per-photo path (the
        same function as ``hyperthumb convert``: one code path for batches)."""
        from app.batch.convert import Settings, Task, convert_one

        settings = Settings(**args["settings"])
        source, destination = Path(args["source"]), Path(args["destination"])
        task = Task(source.name, str(source), destination.name, str(destination), args["force"], "export")
        with self._writing_lock:
            self._writing += 1
        try:
            result = convert_one(
                self._codec(settings.weights_dir), settings, task, progress=progress, cancelled=cancelled
            )
        finally:
            with self._writing_lock:
                self._writing -= 1
        self._reply(rid, result)

    def _op_release_photo(self, rid, args, **_):
        self._photos.pop(args["photo"], None)
        self._reply(rid, None)
