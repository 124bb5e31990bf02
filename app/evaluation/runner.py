"""Run every method at every setting on every photo, and measure each result.

Photos are loaded one at a time (a folder of 6K photos need not fit in memory). A photo that
cannot be read is reported and skipped; the run goes on with the others.
"""

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from app.codec.api import Codec
from app.codec.engine.weights import find_weights
from app.codec.errors import CodecError, ImageLoadError
from app.codec.files.imageio import load_image

from . import metrics
from .images import centre_crop, crop_side, find_images
from .methods import (
    DEFAULT_RATES,
    Coded,
    HyperThumbnailMethod,
    JpegSrMethod,
    Method,
    Photo,
    build_methods,
)
from .standard import reference_thumbnail

# Smaller photos have too few SSIM windows and JPEG blocks to mean anything.
MIN_SIDE = 16


@dataclass
class ResultRow:
    """One photo x method x setting: the columns of results.csv, in order."""

    image: str
    method: str
    setting: float
    width: int
    height: int
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_y: float
    ssim_y: float
    thumb_psnr: float | None
    seconds: float
    payload_bytes: int | None = None  # HyperThumbnails: the decoder adaptation kept in the file
    encode_seconds: float | None = None  # HyperThumbnails: the export alone
    decode_seconds: float | None = None  # HyperThumbnails: the full reconstruction alone


@dataclass
class Evaluation:
    """Everything one run measured, and what it ran on."""

    folder: Path
    crop: int | None
    device: str
    weights: dict
    rows: list[ResultRow] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    skipped_images: dict[str, str] = field(default_factory=dict)
    skipped_methods: dict[str, str] = field(default_factory=dict)
    # method name -> its settings, in the order they ran
    methods: dict[str, list] = field(default_factory=dict)
    # the jpeg+sr decoder's weights, when that method ran
    baseline_weights: dict | None = None
    # sizes of the EXIF segments that carry the HyperThumbnail marker
    marker_bytes: list[int] = field(default_factory=list)
    effort: str = "default"  # the HyperThumbnail export's effort


def measure(photo: Photo, method: Method, setting) -> list[ResultRow]:
    """Code and decode ``photo`` at ``setting``, timed, and score the result (and the variants
    scored from the same file)."""
    start = time.perf_counter()
    coded: Coded = method.code(photo, setting)
    seconds = time.perf_counter() - start
    rows = [_score(photo, method.name, setting, coded, seconds)]
    for name, variant in (coded.variants or {}).items():
        rows.append(_score(photo, name, setting, variant, variant.decode_seconds or 0.0))
    return rows


def _score(photo: Photo, method: str, setting, coded: Coded, seconds: float) -> ResultRow:
    width, height = photo.size
    thumb_psnr = None if coded.thumbnail is None else metrics.psnr(coded.thumbnail, photo.reference_thumbnail)
    return ResultRow(
        image=photo.name,
        method=method,
        setting=setting,
        width=width,
        height=height,
        bytes=coded.num_bytes,
        bpp=coded.num_bytes * 8 / (width * height),
        psnr_rgb=metrics.psnr(coded.reconstruction, photo.rgb),
        psnr_y=metrics.psnr_y(coded.reconstruction, photo.rgb),
        ssim_y=metrics.ssim_y(coded.reconstruction, photo.rgb),
        thumb_psnr=thumb_psnr,
        seconds=seconds,
        payload_bytes=coded.payload_bytes,
        encode_seconds=coded.encode_seconds,
        decode_seconds=coded.decode_seconds,
    )


def load_photo(path: Path, crop: int | None) -> Photo:
    """Load (and centre-crop) a photo; ImageLoadError if it cannot be used."""
    rgb = load_image(path).rgb
    if crop is not None:
        rgb = centre_crop(rgb, crop_side(crop))
    if min(rgb.shape[:2]) < MIN_SIDE:
        height, width = rgb.shape[:2]
        message = f"{path.name} is {width}x{height}, less than {MIN_SIDE} pixels a side"
        raise ImageLoadError(message)
    return Photo(path.name, rgb, reference_thumbnail(rgb))


def photo_paths(folder: Path, limit: int | None) -> list[Path]:
    if not folder.is_dir():
        raise CodecError(f"no such folder: {folder}")
    paths = find_images(folder)
    if not paths:
        raise CodecError(f"no images (jpg, png, webp, tif, bmp) in {folder}")
    return paths[:limit] if limit else paths


def _describe_weights(info) -> dict:
    return {"model_id": info.model_id, "sha256": info.sha256, "trained": info.trained}


def evaluate_folder(
    folder: Path,
    *,
    weights_dir=None,
    device: str | None = None,
    crop: int | None = None,
    rates=None,
    limit: int | None = None,
    log: TextIO | None = None,
    ablation: bool = False,
    model_id: str | None = None,
    effort: str = "default",
) -> Evaluation:
    """Evaluate every method on the photos in ``folder``; one progress line per photo on ``log``.
    ``model_id``: an installed model other than the default (judge new weights before they are);
    ``effort``: the HyperThumbnail export's (the ablation's variants keep their own)."""
    log = log or sys.stderr
    paths = photo_paths(folder, limit)
    codec = Codec(weights_dir, device)
    weights = find_weights(codec.weights_dir, model_id=model_id) if model_id else codec.weights()
    codec.model(weights)  # load before the long run: missing or broken weights fail now
    evaluation = Evaluation(folder, crop, codec.device.type, _describe_weights(weights), effort=effort)
    with tempfile.TemporaryDirectory(prefix="hyperthumb-eval-") as workdir:
        rates = list(rates) if rates else list(DEFAULT_RATES)
        methods, evaluation.skipped_methods = build_methods(codec, weights, rates, Path(workdir), ablation, effort)
        evaluation.methods = {m.name: list(m.settings) for m in methods}
        for method in methods:
            for name in getattr(method, "variant_names", lambda: [])():
                evaluation.methods[name] = list(method.settings)
        for method in methods:
            if isinstance(method, HyperThumbnailMethod) and method.name == "hyperthumbnail":
                evaluation.marker_bytes = method.marker_bytes
            elif isinstance(method, JpegSrMethod):
                evaluation.baseline_weights = _describe_weights(method.weights)
        for index, path in enumerate(paths, 1):
            _evaluate_one(evaluation, methods, path, f"[{index}/{len(paths)}]", log)
    if not evaluation.images:
        raise CodecError(f"none of the {len(paths)} images in {folder} could be read")
    return evaluation


def _evaluate_one(evaluation: Evaluation, methods: list[Method], path: Path, counter: str, log: TextIO) -> None:
    try:
        photo = load_photo(path, evaluation.crop)
    except ImageLoadError as exc:
        evaluation.skipped_images[path.name] = str(exc)
        print(f"eval: {counter} skipped: {exc}", file=log, flush=True)
        return
    start = time.perf_counter()
    for method in methods:
        for setting in method.settings:
            evaluation.rows.extend(measure(photo, method, setting))
    evaluation.images.append(photo.name)
    width, height = photo.size
    seconds = time.perf_counter() - start
    print(
        f"eval: {counter} {photo.name} {width}x{height} {seconds:.1f}s",
        file=log,
        flush=True,
    )
