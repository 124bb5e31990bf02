"""The methods compared: each codes a photo at one of its settings and decodes it again.

    hyperthumbnail  the project's codec, through the real file format (bytes of the .jpg file)
    bicubic+jpeg    the reference thumbnail as a standard JPEG, upscaled x4 with bicubic
    jpeg+sr         the same JPEG thumbnails, reconstructed by a decoder trained for standard
                    JPEG thumbnails (the manifest entry with role "jpeg-sr-baseline")
    jpeg-full       the full-resolution photo as a standard JPEG (4:2:0)
    webp-full       the full-resolution photo as WebP

Thumbnail methods report the thumbnail a viewer shows, so its fidelity can be measured too.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from app.codec.api import RATE_PRESETS, Codec
from app.codec.errors import WeightsError
from app.codec.fileformat import (
    Marker,
    build_metadata,
    read_thumbnail,
    write_hyperthumbnail,
)
from app.codec.inference import DEFAULT_ENCODE_TILE, Reconstructor, encode_thumbnail
from app.codec.weights import WeightsInfo, find_weights, read_manifest

from . import standard

JPEG_SR_ROLE = "jpeg-sr-baseline"
DEFAULT_RATES = tuple(sorted({*RATE_PRESETS.values(), 0.25, 0.75}))
THUMBNAIL_QUALITIES = (20, 30, 40, 50, 60, 70, 80, 90, 95)
FULL_IMAGE_QUALITIES = (5, 10, 20, 30, 40, 50, 70)


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
    """Encode, write the .jpg file, read it back and reconstruct, as a user would."""

    name = "hyperthumbnail"

    def __init__(
        self, codec: Codec, weights: WeightsInfo, rates: Sequence[float], workdir: Path
    ):
        self.codec, self.weights, self.settings = codec, weights, list(rates)
        self.path = workdir / "hyperthumbnail.jpg"
        self.marker_bytes: list[int] = []  # marker_segment_bytes of every file written

    def code(self, photo: Photo, rate: float) -> Coded:
        model = self.codec.model(self.weights)
        tile = self.codec.tile or DEFAULT_ENCODE_TILE
        thumb, luma, chroma = encode_thumbnail(model, photo.rgb, rate, tile=tile)
        width, height = photo.size
        marker = Marker(
            width=width,
            height=height,
            scale=model.config.scale,
            model_id=self.weights.model_id,
            weights_sha256=self.weights.sha256,
            rate=float(rate),
        )
        size = write_hyperthumbnail(self.path, thumb, luma, chroma, marker, force=True)
        thumbnail = read_thumbnail(self.path)
        reconstructor = self.codec.reconstructor(thumbnail)
        reconstruction = reconstructor.decode(tile=self.codec.default_decode_tile)
        self.marker_bytes.append(marker_segment_bytes(marker))
        return Coded(size, reconstruction, thumbnail.rgb)


class BicubicJpegMethod:
    """The plain baseline: a standard JPEG thumbnail, upscaled x4 with bicubic."""

    name = "bicubic+jpeg"

    def __init__(self, qualities: Sequence[int] = THUMBNAIL_QUALITIES):
        self.settings = list(qualities)

    def code(self, photo: Photo, quality: int) -> Coded:
        data = standard.encode_thumbnail_jpeg(photo.reference_thumbnail, quality)
        thumbnail = standard.decode_rgb(data)
        return Coded(
            len(data), standard.upscale_bicubic(thumbnail, photo.size), thumbnail
        )


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
        reconstructor = Reconstructor(
            self.codec.model(self.weights), ycbcr, luma, chroma, photo.size
        )
        reconstruction = reconstructor.decode(tile=self.codec.default_decode_tile)
        return Coded(len(data), reconstruction, standard.decode_rgb(data))


class FullImageMethod:
    """A standard codec on the full-resolution photo: what storing the photo itself costs."""

    def __init__(
        self,
        name: str,
        encode: Callable[[np.ndarray, int], bytes],
        qualities: Sequence[int],
    ):
        self.name, self.encode, self.settings = name, encode, list(qualities)

    def code(self, photo: Photo, quality: int) -> Coded:
        data = self.encode(photo.rgb, quality)
        return Coded(len(data), standard.decode_rgb(data))


def find_role(directory, role: str) -> WeightsInfo | None:
    """The installed model whose manifest entry has ``"role": role``, if any."""
    models = read_manifest(directory)["models"]
    matches = sorted(
        model_id for model_id, entry in models.items() if entry.get("role") == role
    )
    return find_weights(directory, model_id=matches[0]) if matches else None


def jpeg_sr_weights(codec: Codec) -> tuple[WeightsInfo | None, str | None]:
    """The jpeg+sr baseline's weights, loaded; or None and why it cannot run."""
    try:
        info = find_role(codec.weights_dir, JPEG_SR_ROLE)
        if info is None:
            return None, f'no model with role "{JPEG_SR_ROLE}" is installed'
        codec.model(info)  # load now: a broken file should say so before the long run
        return info, None
    except WeightsError as exc:
        return None, str(exc)


def build_methods(
    codec: Codec, weights: WeightsInfo, rates: Sequence[float], workdir: Path
) -> tuple[list[Method], dict[str, str]]:
    """Every method that can run here, and the reasons for those that cannot."""
    methods: list[Method] = [
        HyperThumbnailMethod(codec, weights, rates, workdir),
        BicubicJpegMethod(),
    ]
    skipped: dict[str, str] = {}
    sr_weights, reason = jpeg_sr_weights(codec)
    if sr_weights is not None:
        methods.append(JpegSrMethod(codec, sr_weights))
    else:
        skipped[JpegSrMethod.name] = reason or "unavailable"
    methods.append(
        FullImageMethod("jpeg-full", standard.encode_full_jpeg, FULL_IMAGE_QUALITIES)
    )
    methods.append(
        FullImageMethod("webp-full", standard.encode_full_webp, FULL_IMAGE_QUALITIES)
    )
    return methods, skipped
