"""The methods compared: each codes a photo at one of its settings and decodes it again.

    hyperthumbnail  the project's codec, through the real file format (bytes of the .jpg file)
    bicubic+jpeg    the reference thumbnail as a standard JPEG, upscaled x4 with bicubic
    jpeg+sr         the same JPEG thumbnails, reconstructed by a decoder trained for standard
                    JPEG thumbnails (the manifest entry with role "jpeg-sr-baseline")
    jpeg-full       the full-resolution photo as a standard JPEG (4:2:0)
    webp-full       the full-resolution photo as WebP
    avif-full       the full-resolution photo as AVIF (libaom via Pillow, speed 6)
    jxl-full        the full-resolution photo as JPEG XL (libjxl via pillow-jxl-plugin)
    jpegthumb+avif  what websites ship today: a plain JPEG thumbnail (quality 80) plus the
                    full-resolution AVIF as a second file; bytes are both files'

With detail-layer weights, the files up to HIGH (which have no layer: it starts above) also form
    hyperthumbnail-thumbnail-only   what the product reaches without the detail layer

With ``ablation``, the codec also runs without parts of its export, to measure what each adds:
    hyperthumbnail-no-adapt          effort "fast": no per-image decoder adaptation
    hyperthumbnail-no-adapt-no-moz   ... and libjpeg's baseline Huffman instead of mozjpeg's re-coding
    hyperthumbnail-best              effort "best": the adaptation fitted 3x longer (the slow export)

Thumbnail methods report the thumbnail a viewer shows, so its fidelity can be measured too.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.codec.api import RATE_PRESETS, Codec
from app.codec.engine.inference import Reconstructor
from app.codec.engine.weights import WeightsInfo, find_weights, read_manifest
from app.codec.errors import WeightsError
from app.codec.files.header import build_metadata
from app.codec.files.imageio import LoadedImage
from app.codec.files.marker import Marker
from app.codec.files.reader import read_thumbnail
from app.codec.nets.decoder import DecoderConfig
from app.codec.nets.model import ModelConfig

from . import standard

JPEG_SR_ROLE = "jpeg-sr-baseline"
DEFAULT_RATES = tuple(sorted({*RATE_PRESETS.values(), 0.55, 0.85}))
THUMBNAIL_QUALITIES = (20, 30, 40, 50, 60, 70, 80, 90, 95)
FULL_IMAGE_QUALITIES = (5, 10, 20, 30, 40, 50, 70, 85)
# quality 0 is already ~0.06 bpp on dense photos: AVIF goes no lower; 70 is past 1 bpp
AVIF_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70)
JXL_QUALITIES = (5, 15, 30, 45, 60, 70, 80, 90)
THUMBNAIL_ONLY = "hyperthumbnail-thumbnail-only"
ABLATIONS = (
    ("hyperthumbnail-no-adapt", "fast", True),
    ("hyperthumbnail-no-adapt-no-moz", "fast", False),
    ("hyperthumbnail-best", "best", True),
)


@dataclass
class Photo:
    """One photo under evaluation, with the reference thumbnail every method is judged by."""

    name: str
    rgb: np.ndarray  # uint8 HxWx3
    reference_thumbnail: np.ndarray  # standard.reference_thumbnail(rgb)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


@dataclass
class Coded:
    """A photo coded at one setting and decoded again."""

    num_bytes: int  # what would be stored or sent
    reconstruction: np.ndarray  # uint8, the photo's size
    thumbnail: np.ndarray | None = None  # the decoded thumbnail a viewer shows, if any
    payload_bytes: int | None = None  # a HyperThumbnail's payload (adaptation, detail layer; 0: none)
    encode_seconds: float | None = None  # a HyperThumbnail's export time, adaptation included
    decode_seconds: float | None = None  # a HyperThumbnail's full reconstruction alone
    variants: dict | None = None  # {method name: Coded} scored from the same file (thumbnail-only)


class Method(Protocol):
    name: str
    settings: Sequence[float]

    def code(self, photo: Photo, setting: float) -> Coded: ...


def marker_segment_bytes(marker: Marker) -> int:
    """Bytes the file spends on the XMP segment carrying the marker (a source without metadata):
    a fixed cost per file that weighs heavily on small crops."""
    app1_marker_length_and_identifier = 4 + 29
    return len(build_metadata(marker, marker.thumbnail_size).xmp) + app1_marker_length_and_identifier


class HyperThumbnailMethod:
    """Encode, write the .jpg file, read it back and reconstruct, as a user would. ``effort``
    and ``optimize_entropy`` are the export's settings: the ablation runs it without them."""

    def __init__(
        self,
        codec: Codec,
        weights: WeightsInfo,
        rates: Sequence[float],
        workdir: Path,
        *,
        name: str = "hyperthumbnail",
        effort: str = "default",
        optimize_entropy: bool = True,
    ):
        self.codec, self.weights, self.settings = codec, weights, list(rates)
        self.name, self.effort, self.optimize_entropy = name, effort, optimize_entropy
        self.path = workdir / f"{name}.jpg"
        self.marker_bytes: list[int] = []  # marker_segment_bytes of every file written

    def code(self, photo: Photo, rate: float) -> Coded:
        loaded = LoadedImage(rgb=photo.rgb, exif=None, icc_profile=None, orientation=1, source_format="PNG")
        start = time.perf_counter()
        result = self.codec.encode_photo(
            loaded,
            self.path,
            rate=rate,
            force=True,
            effort=self.effort,
            optimize_entropy=self.optimize_entropy,
            weights=self.weights,
        )
        encode_seconds = time.perf_counter() - start
        thumbnail = read_thumbnail(self.path)
        if thumbnail.marker.weights_sha256 != self.weights.sha256:
            raise RuntimeError(
                f"{self.name}: the file names weights {thumbnail.marker.weights_sha256[:12]}, "
                f"not the {self.weights.model_id} being evaluated"
            )
        start = time.perf_counter()
        reconstruction = self.codec.reconstructor(thumbnail).decode(tile=self.codec.default_decode_tile)
        decode_seconds = time.perf_counter() - start
        self.marker_bytes.append(marker_segment_bytes(thumbnail.marker))  # as written, payload fields included
        payload = len(thumbnail.payload) if thumbnail.payload else 0
        coded = Coded(
            result.file_size,
            reconstruction,
            thumbnail.rgb,
            payload_bytes=payload,
            encode_seconds=encode_seconds,
            decode_seconds=decode_seconds,
        )
        detail = self.codec.model(self.weights).config.detail
        if self.variant_names() and rate <= detail.thumbnail_full_at:
            # Up to HIGH a file is its thumbnail (the layer starts above): the same file is the
            # thumbnail-only curve's point, which then stops where the thumbnail stops growing.
            coded.variants = {THUMBNAIL_ONLY: dataclasses.replace(coded, encode_seconds=None)}
        return coded

    def variant_names(self) -> list[str]:
        detail = self.codec.model(self.weights).config.detail
        return [THUMBNAIL_ONLY] if detail is not None and self.name == "hyperthumbnail" else []


class BicubicJpegMethod:
    """The plain baseline: a standard JPEG thumbnail, upscaled x4 with bicubic."""

    name = "bicubic+jpeg"

    def __init__(self, qualities: Sequence[int] = THUMBNAIL_QUALITIES):
        self.settings = list(qualities)

    def code(self, photo: Photo, quality: int) -> Coded:
        data = standard.encode_thumbnail_jpeg(photo.reference_thumbnail, quality)
        thumbnail = standard.decode_rgb(data)
        return Coded(len(data), standard.upscale_bicubic(thumbnail, photo.size), thumbnail)


class JpegSrMethod:
    """Super-resolution of standard JPEG thumbnails: what a learned decoder gains without a
    learned encoder (the same bytes as bicubic+jpeg)."""

    name = "jpeg+sr"

    def __init__(
        self,
        codec: Codec,
        weights: WeightsInfo,
        qualities: Sequence[int] = THUMBNAIL_QUALITIES,
    ):
        self.codec, self.weights, self.settings = codec, weights, list(qualities)

    def code(self, photo: Photo, quality: int) -> Coded:
        data = standard.encode_thumbnail_jpeg(photo.reference_thumbnail, quality)
        ycbcr, luma, chroma = standard.decode_jpeg_planes(data)
        reconstructor = Reconstructor(self.codec.model(self.weights), ycbcr, luma, chroma, photo.size)
        reconstruction = reconstructor.decode(tile=self.codec.default_decode_tile)
        return Coded(len(data), reconstruction, standard.decode_rgb(data))


class ThumbnailPlusFullMethod:
    """A plain JPEG thumbnail beside a full-resolution file of another method (two files, as
    websites ship them): the bytes of both, the full file's pixels, the thumbnail's preview. The
    full file is ``full``'s, reused when it has just coded the same photo and quality."""

    def __init__(self, name: str, full: "FullImageMethod", thumbnail_quality: int = standard.SITE_THUMBNAIL_QUALITY):
        self.name, self.full, self.settings = name, full, list(full.settings)
        self.thumbnail_quality = thumbnail_quality

    def code(self, photo: Photo, quality: int) -> Coded:
        thumb = standard.encode_thumbnail_jpeg(photo.reference_thumbnail, self.thumbnail_quality)
        full = self.full.code(photo, quality)
        return Coded(len(thumb) + full.num_bytes, full.reconstruction, standard.decode_rgb(thumb))


class FullImageMethod:
    """A standard codec on the full-resolution photo: what storing the photo itself costs. The
    last photo's results are kept, so a method built on this one does not code it again."""

    def __init__(
        self,
        name: str,
        encode: Callable[[np.ndarray, int], bytes],
        qualities: Sequence[int],
    ):
        self.name, self.encode, self.settings = name, encode, list(qualities)
        self._last: dict[tuple[str, int], Coded] = {}

    def code(self, photo: Photo, quality: int) -> Coded:
        key = (photo.name, quality)  # names are unique in a run (an id() is reused once a photo is freed)
        if key not in self._last:
            if self._last and next(iter(self._last))[0] != photo.name:
                self._last.clear()  # a new photo: forget the last one's
            data = self.encode(photo.rgb, quality)
            self._last[key] = Coded(len(data), standard.decode_rgb(data))
        return self._last[key]


def find_role(directory, role: str, like: WeightsInfo | None = None) -> WeightsInfo | None:
    """The installed model whose manifest entry has ``"role": role``, if any; with ``like``, one
    whose decoder has ``like``'s architecture comes first (a fair baseline has the same decoder)."""
    models = read_manifest(directory)["models"]
    matches = sorted(
        model_id for model_id, entry in models.items() if isinstance(entry, dict) and entry.get("role") == role
    )
    if like is not None:
        matches.sort(key=lambda model_id: not _same_decoder(models[model_id], like))  # stable: by id within
    return find_weights(directory, model_id=matches[0]) if matches else None


def _same_decoder(entry: dict, like: WeightsInfo) -> bool:
    """Whether the entry's decoder is ``like``'s, its detail branch aside (a detail-layer model's
    fair JPEG+SR baseline is its base decoder trained for standard thumbnails)."""
    try:
        return _base_decoder(ModelConfig.from_dict(entry["architecture"]).decoder) == _base_decoder(like.config.decoder)
    except (KeyError, TypeError, ValueError):
        return False


def _base_decoder(config: DecoderConfig) -> DecoderConfig:
    return dataclasses.replace(
        config,
        detail_latent=0,
        detail_channels=DecoderConfig.detail_channels,
        detail_features=DecoderConfig.detail_features,
    )


def jpeg_sr_weights(codec: Codec, like: WeightsInfo | None = None) -> tuple[WeightsInfo | None, str | None]:
    """The jpeg+sr baseline's weights (the one with ``like``'s decoder, if installed), loaded; or
    None and why it cannot run."""
    try:
        info = find_role(codec.weights_dir, JPEG_SR_ROLE, like)
        if info is None:
            return None, f'no model with role "{JPEG_SR_ROLE}" is installed'
        codec.model(info)  # load now: a broken file should say so before the long run
        return info, None
    except WeightsError as exc:
        return None, str(exc)


def build_methods(
    codec: Codec,
    weights: WeightsInfo,
    rates: Sequence[float],
    workdir: Path,
    ablation: bool = False,
    effort: str = "default",
) -> tuple[list[Method], dict[str, str]]:
    """Every method that can run here, and the reasons for those that cannot."""
    methods: list[Method] = [HyperThumbnailMethod(codec, weights, rates, workdir, effort=effort)]
    if ablation:
        methods += [HyperThumbnailMethod(codec, weights, rates, workdir, name=name, effort=effort, optimize_entropy=moz)
                    for name, effort, moz in ABLATIONS]  # fmt: skip
    methods.append(BicubicJpegMethod())
    skipped: dict[str, str] = {}
    sr_weights, reason = jpeg_sr_weights(codec, like=weights)
    if sr_weights is not None:
        methods.append(JpegSrMethod(codec, sr_weights))
    else:
        skipped[JpegSrMethod.name] = reason or "unavailable"
    methods.append(FullImageMethod("jpeg-full", standard.encode_full_jpeg, FULL_IMAGE_QUALITIES))
    methods.append(FullImageMethod("webp-full", standard.encode_full_webp, FULL_IMAGE_QUALITIES))
    if standard.can_write_avif():
        avif = FullImageMethod("avif-full", standard.encode_full_avif, AVIF_QUALITIES)
        methods += [avif, ThumbnailPlusFullMethod("jpegthumb+avif", avif)]
    else:
        skipped["avif-full"] = "this Pillow cannot write AVIF (Pillow 11.3 or newer with libavif can)"
    if standard.can_write_jxl():
        methods.append(FullImageMethod("jxl-full", standard.encode_full_jxl, JXL_QUALITIES))
    else:
        skipped["jxl-full"] = "JPEG XL needs pillow-jxl-plugin (pip install -e '.[eval]')"
    return methods, skipped
