"""The codec's small API: everything the viewer and the CLI need, and nothing about networks.

    open_image(path)              -> ImageDocument (preview pixels, full size, marker); no torch work
    Codec().encode_file(src, dst) -> EncodeResult  (photo -> HyperThumbnail file)
    Codec().load_photo(src)       -> LoadedImage   (the photo to encode; a HyperThumbnail's reconstruction)
    Codec().encode_photo(photo, dst) / estimate_size(photo, rate) -> the file, or about how big it will be
    Codec().reconstructor(doc)    -> Reconstructor (decoder inputs prepared once per file;
                                     takes an ImageDocument, a Thumbnail or a path; with the
                                     file's detail layer unless detail=False)
    Reconstructor.decode(region)  -> uint8 pixels of any region of the full-resolution photo

Weights load lazily on first use, so opening and previewing files never waits for torch.
"""

import dataclasses
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.codec.engine import adaptation, detail_refine
from app.codec.engine.adaptation import EFFORT_STEPS
from app.codec.engine.calibration import (
    Calibration,
    cached_calibration,
    choose_runtime,
    encoder_autocast_context,
    encoder_precision_choice,
    provisional_runtime,
)
from app.codec.engine.detail_coding import DetailLayerError
from app.codec.engine.detail_layer import DetailCoder, DetailSource
from app.codec.engine.device import inference_dtype, select_device
from app.codec.engine.inference import Reconstructor, decoder_inputs, encode_thumbnail
from app.codec.engine.runtime import AUTO, SPECS, DecoderRuntime, cpu_has_native_bf16, requested_runtime
from app.codec.engine.weights import WeightsInfo, find_weights, installed_weights_status, load_model, weights_dir
from app.codec.errors import CodecError, NotHyperThumbnailError, OutputExistsError, shorten
from app.codec.files import iptc
from app.codec.files.atomic import same_file
from app.codec.files.document import ImageDocument, open_image
from app.codec.files.estimate import SAMPLE_PIXELS, SizeEstimate, estimate_from_sample, sample_strips
from app.codec.files.header import build_metadata, minimal_exif
from app.codec.files.imageio import LoadedImage, load_image, loaded_from, open_pil
from app.codec.files.marker import Marker, tables_digest, thumbnail_size
from app.codec.files.payload import (
    ADAPTATION_KIND,
    DETAIL_KIND,
    PayloadError,
    pack_records,
    segments_size,
    unpack_records,
)
from app.codec.files.presets import (
    DEFAULT_DECODE_TILE,
    DEFAULT_ENCODE_TILE,
    LARGE_DECODE_PIXELS,
    LARGE_DECODE_TILE,
    RATE_PRESETS,
)
from app.codec.files.reader import Thumbnail, decoded_ycbcr, marker_of, read_thumbnail, thumbnail_from
from app.codec.files.tiling import CancelFn, ProgressFn, check_cancel
from app.codec.files.writer import encode_jpeg, write_hyperthumbnail
from app.codec.nets.model import HyperThumbnailModel

__all__ = [
    "RATE_PRESETS", "Codec", "EncodeResult", "ImageDocument", "LoadedImage", "SizeEstimate", "installed_weights_status",
    "open_image", "parse_rate", "weights_dir",
]  # fmt: skip

# The marker's PayloadLength and PayloadSha256 properties, as written in the XMP packet.
PAYLOAD_MARKER_BYTES = 120


def parse_rate(text: str | float) -> float:
    """A preset name (any case; ``RATE_PRESETS``) or a number in 0..1 (0 = smallest file)."""
    if isinstance(text, str) and text.strip().upper() in RATE_PRESETS:
        return RATE_PRESETS[text.strip().upper()]
    try:
        value = float(text)
    except ValueError:
        names = ", ".join(RATE_PRESETS)
        raise CodecError(f"rate must be one of {names} or a number in 0..1, not {shorten(repr(text))}") from None
    if not 0.0 <= value <= 1.0:
        raise CodecError(f"rate must be between 0 and 1, got {value}")
    return value


@dataclass
class EncodeResult:
    path: Path
    file_size: int
    full_size: tuple[int, int]
    thumbnail_size: tuple[int, int]
    luma_table: np.ndarray
    chroma_table: np.ndarray
    weights: WeightsInfo
    notes: list[str]
    adaptation: "adaptation.AdaptationResult | None" = None  # the fit, when the effort ran one
    detail_bytes: int = 0  # the detail layer's record, when the file has one

    @property
    def bits_per_pixel(self) -> float:
        return self.file_size * 8 / (self.full_size[0] * self.full_size[1])


def _split_progress(progress: ProgressFn, fit_steps: int) -> tuple[ProgressFn, ProgressFn]:
    """One progress bar for an export's two stages: the encoder, then (when the effort adapts the
    decoder) the fit, which takes most of the time: reported as percent, the encoder's first 15."""
    if progress is None or not fit_steps:
        return progress, None
    encoder_share = 15

    def encoder(done: int, total: int) -> None:
        progress(encoder_share * done // max(1, total), 100)

    def fit(done: int, total: int) -> None:
        progress(encoder_share + (100 - encoder_share) * done // max(1, total), 100)

    return encoder, fit


def _halves(progress: ProgressFn) -> tuple[ProgressFn, ProgressFn]:
    """One progress callback split in two equal stages."""
    if progress is None:
        return None, None
    return (lambda d, t: progress(d, 2 * max(1, t)), lambda d, t: progress(max(1, t) + d, 2 * max(1, t)))


def _writable_destination(destination: str | Path, force: bool) -> Path:
    """Checked before any slow work, so an existing output fails at once (never overwritten unasked)."""
    destination = Path(destination)
    if destination.exists() and not force:
        raise OutputExistsError(f"output exists: {destination} (use --force to overwrite)")
    return destination


@dataclass(frozen=True)
class DetailLayer:
    """A photo's detail layer as ``Codec.encode_detail`` made it, and what it is worth: the mean
    squared error of the photo's reconstruction without and with it (``layered_mse`` None: not
    measured)."""

    record: bytes
    base_mse: float
    layered_mse: float | None = None

    @property
    def pays(self) -> bool:
        """Whether the layer makes the reconstruction better (at its lowest rates, on an easy
        photo, the trained layer can make it worse: then the file is better without it)."""
        return self.layered_mse is None or self.layered_mse < self.base_mse

    def gain_db(self) -> float | None:
        if self.layered_mse is None or self.layered_mse <= 0 or self.base_mse <= 0:
            return None
        return 10 * math.log10(self.base_mse / self.layered_mse)


def mean_squared_error(a: np.ndarray, b: np.ndarray, rows: int = 256) -> float:
    """Of two uint8 images of one shape, a band of rows at a time (a 6K photo in float64 whole is
    over half a gigabyte)."""
    total = 0.0
    for top in range(0, a.shape[0], rows):
        diff = a[top : top + rows].astype(np.float32) - b[top : top + rows].astype(np.float32)
        total += float(np.square(diff, dtype=np.float64).sum())
    return total / max(1, a.size)


class Codec:
    """Owns the device and runtime choice and the loaded models (one per weights file, loaded once).

    ``runtime``: ``auto`` (default; ``HYPERTHUMB_RUNTIME`` overrides) calibrates the fastest decoder
    runtime on the device once per machine and weights; a name (``runtime.RUNTIME_NAMES``) forces
    one, and also picks its device when ``device`` is not given. ``calibrate_in_background``: an
    ``auto`` choice not yet measured on this machine does not hold the first decode (the viewer's
    first-ever zoom waited ~50 s): it decodes on ``calibration.provisional_runtime`` while the
    calibration runs in a thread, and decoders made after it use the measured choice.
    """

    def __init__(
        self,
        weights_dir=None,
        device: str | None = None,
        tile: int | None = None,
        runtime: str | None = None,
        *,
        calibrate_in_background: bool = False,
    ):
        self.weights_dir = weights_dir
        self.calibrate_in_background = calibrate_in_background
        self.runtime_name = requested_runtime(runtime)
        if self.runtime_name != AUTO:
            wanted = SPECS[self.runtime_name].device_type
            if device is None and not os.environ.get("HYPERTHUMB_DEVICE"):
                device = wanted
            elif select_device(device).type != wanted:
                raise CodecError(f"runtime {self.runtime_name} runs on {wanted}, not on {select_device(device).type}")
        self.device = select_device(device)
        self.dtype = inference_dtype(self.device)
        self.tile = tile
        self._models: dict[str, HyperThumbnailModel] = {}
        self._runtimes: dict[str, tuple[DecoderRuntime, Calibration | None]] = {}
        self._models_lock = threading.Lock()  # the viewer's decoder and export workers share a Codec
        self._runtimes_lock = threading.Lock()
        self._encoder_precisions: dict[str, str] = {}  # weights sha256 -> "bfloat16" or "float32"
        self._encoder_precisions_lock = threading.Lock()  # its own: a decode never waits for the ~1 s probe
        self._detail_coders: dict[str, DetailCoder] = {}

    def weights(self, sha256: str | None = None) -> WeightsInfo:
        """The default weights, or the ones whose hash a file's marker names."""
        return find_weights(self.weights_dir, sha256=sha256)

    def model(self, info: WeightsInfo) -> HyperThumbnailModel:
        """The loaded model for these weights; loaded once even when worker threads ask together."""
        with self._models_lock:
            if info.sha256 not in self._models:
                self._models[info.sha256] = load_model(info, self.device, self.dtype)
            return self._models[info.sha256]

    def decoder_runtime(self, info: WeightsInfo, log=lambda text: None) -> DecoderRuntime:
        """The runtime these weights decode with here: chosen (and calibrated) once per Codec."""
        return self._runtime_entry(info, log)[0]

    def calibration(self, info: WeightsInfo) -> Calibration | None:
        """What the ``auto`` choice measured (None when a runtime was named)."""
        return self._runtime_entry(info)[1]

    def _runtime_entry(self, info: WeightsInfo, log=lambda text: None):
        model = self.model(info)
        with self._runtimes_lock:
            if info.sha256 not in self._runtimes:
                if (
                    self.calibrate_in_background
                    and self.runtime_name == AUTO
                    and cached_calibration(info, self.device.type) is None
                ):
                    self._runtimes[info.sha256] = (provisional_runtime(model, info, self.device.type), None)
                    self._calibration_thread = threading.Thread(
                        target=self._calibrate_later, args=(model, info), daemon=True, name="calibration"
                    )
                    self._calibration_thread.start()
                else:
                    self._runtimes[info.sha256] = choose_runtime(model, info, self.runtime_name, self.device.type, log)
            return self._runtimes[info.sha256]

    def _calibrate_later(self, model: HyperThumbnailModel, info: WeightsInfo) -> None:
        """The one-time calibration, off the decoding path; its choice replaces the provisional one."""
        try:
            entry = choose_runtime(model, info, AUTO, self.device.type)
        except Exception:  # noqa: BLE001 -- a thread boundary: the provisional runtime (checked) stays
            return
        with self._runtimes_lock:
            self._runtimes[info.sha256] = entry

    @property
    def calibrating(self) -> bool:
        """Whether a background calibration is still measuring this machine's runtimes."""
        thread = getattr(self, "_calibration_thread", None)
        return thread is not None and thread.is_alive()

    def detail_coder(self, info: WeightsInfo) -> DetailCoder | None:
        """The integer prior and coder tables of a detail-layer model (None for thumbnail-only ones)."""
        model = self.model(info)
        if model.config.detail is None:
            return None
        with self._models_lock:
            if info.sha256 not in self._detail_coders:
                self._detail_coders[info.sha256] = DetailCoder(model)
            return self._detail_coders[info.sha256]

    def encoder_precision(self, info: WeightsInfo | None = None) -> str:
        """What the encoder network of ``info`` (default: the default weights) computes in: on a
        CPU with native bf16 and runtime auto, whichever precision was measured faster here
        (``calibration.encoder_precision_choice``), bfloat16 when torch-bf16 is named, else
        float32. The QPM, the DCT and the tables are always float32."""
        if self.device.type != "cpu" or not cpu_has_native_bf16() or self.runtime_name not in (AUTO, "torch-bf16"):
            return "float32"
        if self.runtime_name == "torch-bf16":
            return "bfloat16"
        info = info or self.weights()
        model = self.model(info)
        with self._encoder_precisions_lock:
            if info.sha256 not in self._encoder_precisions:
                self._encoder_precisions[info.sha256] = encoder_precision_choice(model, info)
            return self._encoder_precisions[info.sha256]

    def encoder_autocast(self, info: WeightsInfo | None = None):
        """The context the encoder network runs in (see ``encoder_precision``)."""
        return encoder_autocast_context(self.encoder_precision(info))

    def encode_file(
        self,
        source: str | Path,
        destination: str | Path,
        *,
        rate: float = RATE_PRESETS["MEDIUM"],
        strip_gps: bool = False,
        keep_exif: bool = True,
        force: bool = False,
        progress: ProgressFn = None,
        cancelled: CancelFn = None,
        effort: str = "default",
    ) -> EncodeResult:
        """Photo file -> HyperThumbnail file. The source is only read; the output is written
        atomically (a failure or cancel leaves no file). ``keep_exif=False`` writes no metadata of
        the source but its orientation (without which the photo would show turned)."""
        if same_file(source, destination):  # the same path, or a symlink or hard link to it
            raise CodecError("refusing to overwrite the source photo with its HyperThumbnail")
        destination = _writable_destination(destination, force)
        photo = load_image(source)
        return self.encode_photo(
            photo,
            destination,
            rate=rate,
            strip_gps=strip_gps,
            keep_exif=keep_exif,
            force=force,
            progress=progress,
            cancelled=cancelled,
            effort=effort,
        )

    def load_photo(self, source: str | Path, *, progress: ProgressFn = None, cancelled: CancelFn = None) -> LoadedImage:
        """The photo a file stands for, ready for ``encode_photo``: an ordinary image's pixels, or
        a HyperThumbnail's full-resolution reconstruction (its thumbnail alone is not the photo)."""
        name = str(source)
        with open_pil(source) as im:  # one parse: the header says which of the two it is
            marker = marker_of(im, name)
            if marker is None:
                return loaded_from(im, name)
            thumbnail = thumbnail_from(im, marker, name)
        pixels = self.reconstructor(thumbnail).decode(
            tile=self.decode_tile_for(marker.width * marker.height), progress=progress, cancelled=cancelled
        )
        return LoadedImage(
            rgb=pixels,
            exif=thumbnail.exif,
            icc_profile=thumbnail.icc_profile,
            xmp=thumbnail.xmp,
            iptc=thumbnail.iptc,
            orientation=thumbnail.orientation,
            source_format="HyperThumbnail",
            notes=["re-encoded the reconstruction of a HyperThumbnail"],
        )

    def encode_photo(
        self,
        photo: LoadedImage,
        destination: str | Path,
        *,
        rate: float = RATE_PRESETS["MEDIUM"],
        strip_gps: bool = False,
        keep_exif: bool = True,
        force: bool = False,
        progress: ProgressFn = None,
        cancelled: CancelFn = None,
        effort: str = "default",
        optimize_entropy: bool = True,
        weights: WeightsInfo | None = None,
    ) -> EncodeResult:
        """A loaded photo -> HyperThumbnail file, written atomically; ``cancelled`` is also asked
        once the encoder is done, so a cancel up to the write leaves no file. ``effort``: "fast"
        (the networks only), "default" or "best" (also fit the decoder to this photo, 80 or 240
        steps: see ``adaptation``; the file carries the offsets when they are worth their bytes;
        "best" also fits a detail layer's latent to the photo: ``detail_refine``).
        ``optimize_entropy=False`` keeps libjpeg's baseline Huffman coding (for measuring what
        mozjpeg's lossless re-coding saves, or for readers that cannot do progressive JPEG).
        ``weights``: encode with these installed weights instead of the default (evaluation)."""
        if effort not in EFFORT_STEPS:
            raise CodecError(f"effort must be one of {', '.join(EFFORT_STEPS)}, not {shorten(repr(effort))}")
        destination = _writable_destination(destination, force)
        info = weights or self.weights()
        model = self.model(info)
        height, width = photo.rgb.shape[:2]
        coder = self.detail_coder(info)
        # Only above the thumbnail's best rate: below it, measured on the validation crops, the
        # thumbnail's own bits buy more PSNR than the layer's (docs/MODEL.md). A file with the
        # layer carries what the adaptation would add (and more) in the layer itself.
        layered = coder is not None and rate > model.config.detail.thumbnail_full_at
        steps = EFFORT_STEPS[effort] if not layered and adaptation.worth_trying(width * height, rate) else 0
        encoder_progress, fit_progress = _split_progress(progress, steps or (1 if layered else 0))
        thumb, luma, chroma = encode_thumbnail(
            model,
            photo.rgb,
            rate,
            tile=self.tile or DEFAULT_ENCODE_TILE,
            progress=encoder_progress,
            cancelled=cancelled,
            autocast=self.encoder_autocast(info),
        )
        check_cancel(cancelled)
        marker = self._marker(info, model, width, height, rate)
        notes = list(photo.notes)
        payload, adapted, detail_bytes = None, None, 0
        layer = None
        if layered:
            ycbcr = decoded_ycbcr(encode_jpeg(thumb, luma, chroma))  # what the file's readers will decode
            layer = self.encode_detail(
                info,
                coder,
                photo.rgb,
                ycbcr,
                luma,
                chroma,
                rate,
                fit_progress,
                cancelled,
                measure=effort != "fast",
                refine_steps=detail_refine.STEPS_BY_EFFORT[effort],
            )
            check_cancel(cancelled)
            gain = layer.gain_db()
            if gain is not None and gain < adaptation.MAX_GAIN_DB and adaptation.worth_trying(width * height, rate):
                # The layer buys less than a decoder fitted to the photo can: the thumbnail alone with
                # the fit may be better and is far smaller (an easy photo at the layer's lowest rates).
                steps, fit_progress = EFFORT_STEPS[effort], None
            elif not layer.pays:
                steps, fit_progress = 0, None
            else:
                steps = 0
        if steps:
            ycbcr = decoded_ycbcr(encode_jpeg(thumb, luma, chroma))  # what the file's readers will decode
            # float32 even where the encoder runs in bf16: bf16 gradients cost a third of the gain
            adapted = adaptation.fit(
                model,
                photo.rgb,
                ycbcr,
                luma,
                chroma,
                rate=rate,
                steps=steps,
                progress=fit_progress,
                cancelled=cancelled,
            )
            payload = adapted.payload
            check_cancel(cancelled)
        if layer is not None:
            # without the layer: the base, or the base with the fit where the file would keep its offsets
            without = layer.base_mse / 10 ** (max(adapted.gain_db, 0.0) / 10) if adapted and payload else layer.base_mse
            if layer.layered_mse is None or layer.layered_mse < without:
                payload, detail_bytes, adapted = pack_records({DETAIL_KIND: layer.record}), len(layer.record), None
            else:
                worse = 10 * math.log10(layer.layered_mse / without) if without > 0 else 0.0
                notes.append(
                    f"detail layer left out: the photo reconstructs {worse:.2f} dB better without its "
                    f"{len(layer.record)} bytes"
                )
        size = write_hyperthumbnail(
            destination,
            thumb,
            luma,
            chroma,
            marker,
            **_metadata_to_keep(photo, keep_exif),
            strip_gps=strip_gps,
            force=force,
            notes=notes,
            payload=payload,
            optimize_entropy=optimize_entropy,
        )
        if adapted is not None:
            notes.append(
                f"decoder adapted to this photo: {adapted.gain_db:+.2f} dB on held-out crops, "
                + (f"{adapted.payload_bytes} bytes kept" if payload else "not worth its bytes, left out")
            )
        return EncodeResult(
            destination,
            size,
            (width, height),
            (thumb.shape[1], thumb.shape[0]),
            luma,
            chroma,
            info,
            notes,
            adapted,
            detail_bytes,
        )

    def encode_detail(
        self,
        info: WeightsInfo,
        coder: DetailCoder,
        rgb: np.ndarray,
        ycbcr: np.ndarray,
        luma,
        chroma,
        rate: float,
        progress: ProgressFn = None,
        cancelled: CancelFn = None,
        *,
        measure: bool = False,
        refine_steps: int = 0,
    ) -> DetailLayer:
        """The detail layer of a photo whose thumbnail decodes to ``ycbcr``: the base
        reconstruction first (what a reader has without the layer), then the layer's record;
        ``measure``: also decode the photo with the layer, as a reader will, to say whether it pays;
        ``refine_steps``: fit the latent to the photo (``detail_refine``, export effort "best")."""
        height, width = rgb.shape[:2]
        tile = self.decode_tile_for(width * height)
        base_progress, layer_progress = _halves(progress)
        model, runtime = self.model(info), self.decoder_runtime(info)
        base = Reconstructor(model, ycbcr, luma, chroma, (width, height), runtime)
        base_pixels = base.decode(tile=tile, progress=base_progress, cancelled=cancelled)
        refinement, refine_progress = None, None
        if refine_steps > 0:  # the refinement is most of the layer's time: half of its share of the bar
            layer_progress, refine_progress = _halves(layer_progress)
            recipe = (info.entry.get("training") or {}).get("recipe")
            refinement = detail_refine.Refinement(
                decoder_inputs(ycbcr, luma, chroma, torch.device("cpu")),
                detail_refine.rd_lambda(
                    rate, recipe if isinstance(recipe, dict) else None, model.config.detail.thumbnail_full_at
                ),
                refine_steps,
            )
        record = coder.encode(
            rgb,
            base_pixels,
            ycbcr,
            rate,
            autocast=self.encoder_autocast(info),
            refinement=refinement,
            progress=layer_progress,
            refine_progress=refine_progress,
            cancelled=cancelled,
        )
        base_mse = mean_squared_error(rgb, base_pixels)
        del base_pixels
        if not measure:
            return DetailLayer(record, base_mse)
        layered = Reconstructor(
            model, ycbcr, luma, chroma, (width, height), runtime, None, DetailSource(coder, record, ycbcr)
        )
        return DetailLayer(record, base_mse, mean_squared_error(rgb, layered.decode(tile=tile, cancelled=cancelled)))

    def estimate_size(
        self,
        photo: LoadedImage,
        rate: float = RATE_PRESETS["MEDIUM"],
        *,
        strip_gps: bool = False,
        keep_exif: bool = True,
        sample_pixels: int = SAMPLE_PIXELS,
        cancelled: CancelFn = None,
        effort: str = "default",
    ) -> SizeEstimate:
        """About how many bytes ``encode_photo`` would write: a small photo is encoded in memory
        (exact); a large one through strips of ``sample_pixels`` taken evenly across it, each
        encoded in its context (``estimate.sample_strips``)."""
        info = self.weights()
        model = self.model(info)
        mosaic = sample_strips(photo.rgb, pixels=sample_pixels)
        pixels = photo.rgb if mosaic is None else mosaic.pixels
        tile = self.tile or DEFAULT_ENCODE_TILE
        thumb, luma, chroma = encode_thumbnail(
            model, pixels, rate, tile=tile, cancelled=cancelled, autocast=self.encoder_autocast(info)
        )
        height, width = photo.rgb.shape[:2]
        marker = self._marker(info, model, width, height, rate)
        scale = model.config.scale
        detail_bytes = self._estimate_detail_bytes(
            info, pixels, thumb, luma, chroma, rate, (width, height), cancelled, effort=effort
        )
        seam_bytes = 0.0
        if mosaic is not None:
            seam_bytes = mosaic.seam_bits(thumb, luma, chroma, scale) / 8  # DC jumps the file has not
            thumb = mosaic.crop(thumb, scale)  # the strips' own pixels, without the context around them
        kept = _metadata_to_keep(photo, keep_exif)
        meta = build_metadata(
            dataclasses.replace(marker, tables_sha256=tables_digest(luma, chroma)),  # as the writer records it
            thumbnail_size(width, height, scale),
            source_exif=kept["source_exif"],
            source_xmp=kept["source_xmp"],
            source_iptc=kept["source_iptc"],
            strip_gps=strip_gps,
            orientation=photo.orientation,
        )
        estimate = estimate_from_sample(
            thumb,
            luma,
            chroma,
            (width, height),
            scale,
            exif=meta.exif,
            xmp_packet=meta.xmp,
            icc_profile=photo.icc_profile,
            exact=mosaic is None,
            seam_bytes=seam_bytes,
            extra=iptc.app13(meta.iptc) if meta.iptc else b"",
        )
        if detail_bytes:
            estimate = dataclasses.replace(estimate, bytes=estimate.bytes + detail_bytes, exact=False)
        elif EFFORT_STEPS.get(effort) and adaptation.worth_trying(width * height, rate):
            # the fit itself is too slow for an estimate: count the payload it usually keeps
            estimate = dataclasses.replace(
                estimate, bytes=estimate.bytes + adaptation.TYPICAL_PAYLOAD_BYTES, exact=False
            )
        return estimate

    def _estimate_detail_bytes(
        self,
        info: WeightsInfo,
        pixels: np.ndarray,
        thumb: np.ndarray,
        luma,
        chroma,
        rate: float,
        full_size: tuple[int, int],
        cancelled: CancelFn,
        effort: str = "default",
    ) -> int:
        """The detail layer's share of the file (0 for thumbnail-only models): the layer of the
        sampled pixels (strips with their context, or the whole photo), scaled by area, plus the
        payload's segment headers and marker properties."""
        coder = self.detail_coder(info)
        if coder is None or rate <= self.model(info).config.detail.thumbnail_full_at:
            return 0
        ycbcr = decoded_ycbcr(encode_jpeg(thumb, luma, chroma))
        layer = self.encode_detail(
            info,
            coder,
            pixels,
            ycbcr,
            luma,
            chroma,
            rate,
            cancelled=cancelled,
            measure=effort != "fast",
            refine_steps=detail_refine.STEPS_BY_EFFORT.get(effort, 0),
        )
        gain = layer.gain_db()
        if not layer.pays or (gain is not None and gain < adaptation.TYPICAL_GAIN_DB):
            return 0  # the export leaves it out too (there, when a fit of the decoder does better)
        area = full_size[0] * full_size[1] / (pixels.shape[0] * pixels.shape[1])
        payload = round(len(layer.record) * area) + 12  # + the record list's headers
        return segments_size(payload) + PAYLOAD_MARKER_BYTES

    @staticmethod
    def _marker(info: WeightsInfo, model: HyperThumbnailModel, width: int, height: int, rate: float) -> Marker:
        return Marker(
            width=width,
            height=height,
            scale=model.config.scale,
            model_id=info.model_id,
            weights_sha256=info.sha256,
            rate=float(rate),
        )

    def reconstructor(self, source: str | Path | Thumbnail | ImageDocument, *, detail: bool = True) -> Reconstructor:
        """Prepare a HyperThumbnail for decoding with the weights its marker names; with its
        detail layer when it has one and ``detail`` is true (else the base reconstruction)."""
        if isinstance(source, ImageDocument):
            if source.thumbnail is None:
                raise NotHyperThumbnailError(f"not a HyperThumbnail: {source.path.name} is a plain image")
            source = source.thumbnail
        thumbnail = source if isinstance(source, Thumbnail) else read_thumbnail(source)
        marker = thumbnail.marker
        info = self.weights(sha256=marker.weights_sha256)
        model, runtime = self.model(info), self.decoder_runtime(info)
        offsets, source_detail, notes = None, None, []
        records = {}
        if thumbnail.payload is not None:
            try:
                records = unpack_records(thumbnail.payload)
            except PayloadError as exc:
                notes.append(f"the file's payload is not used: {exc}")
        elif thumbnail.payload_problem:
            notes.append(f"the file's payload is not used ({thumbnail.payload_problem}): base reconstruction")
        if ADAPTATION_KIND in records:
            try:
                offsets = adaptation.dequantize(records[ADAPTATION_KIND], adaptation.layer_sizes(model))
            except ValueError as exc:
                notes.append(f"the file's decoder adaptation is not used: {exc}")
        if DETAIL_KIND in records and detail:
            coder = self.detail_coder(info)
            try:
                if coder is None:
                    raise DetailLayerError(f"the model {info.model_id} has no detail decoder")
                source_detail = DetailSource(coder, records[DETAIL_KIND], thumbnail.ycbcr)
            except DetailLayerError as exc:
                notes.append(f"the file's detail layer is not used ({exc}): base reconstruction")
        reconstructor = Reconstructor(
            model,
            thumbnail.ycbcr,
            thumbnail.luma_table,
            thumbnail.chroma_table,
            (marker.width, marker.height),
            runtime,
            offsets,
            source_detail,
        )
        reconstructor.notes = notes
        return reconstructor

    @property
    def default_decode_tile(self) -> int:
        return self.tile or DEFAULT_DECODE_TILE

    def decode_tile_for(self, pixels: int) -> int:
        """The tile to decode ``pixels`` output pixels with: the user's, else the default, or for a
        large photo the smaller ``LARGE_DECODE_TILE`` that keeps peak memory under ~800 MB."""
        if self.tile:
            return self.tile
        return LARGE_DECODE_TILE if pixels > LARGE_DECODE_PIXELS else DEFAULT_DECODE_TILE


def _metadata_to_keep(photo: LoadedImage, keep_exif: bool) -> dict:
    """The source metadata to carry over (``write_hyperthumbnail`` keywords): all of it, or only
    the orientation the pixels need."""
    kept = {
        "icc_profile": photo.icc_profile,
        "orientation": photo.orientation,
        "dpi": photo.dpi,
        "aspect": photo.aspect,
    }
    if keep_exif:
        return kept | {"source_exif": photo.exif, "source_xmp": photo.xmp, "source_iptc": photo.iptc}
    return kept | {"source_exif": minimal_exif(photo.orientation), "source_xmp": None, "source_iptc": None}
