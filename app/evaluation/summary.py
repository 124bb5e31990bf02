"""Turn result rows into what one reads: a curve per method, BD-PSNR, the preset points.

A method's curve has one point per setting: bpp and each metric averaged over the photos (so a
point is "what this setting does on an average photo of the folder"). BD-PSNR compares each
curve with the bicubic+JPEG anchor, over the whole overlap and over the bpp range the
HyperThumbnail presets (LOW..HIGH) cover, where the codec is meant to be used.
"""

import math
from collections import defaultdict

import numpy as np

from app.codec.api import RATE_PRESETS

from .bjontegaard import bd_psnr
from .runner import Evaluation, ResultRow

ANCHOR = "bicubic+jpeg"
HYPERTHUMBNAIL = "hyperthumbnail"
JPEG_SR = "jpeg+sr"
AVIF = "avif-full"
CURVE_METRICS = ("bpp", "psnr_rgb", "psnr_y", "ssim_y", "thumb_psnr", "decode_seconds")
# The thumbnail's own presets: the range the bicubic+JPEG and JPEG+SR comparisons are made in
# (what LOW..HIGH covered before the detail layer; the detail layer's presets lie above it).
THUMBNAIL_PRESETS = ("LOW", "MEDIUM", "HIGH")
# Where the detail layer is judged against full-resolution AVIF (issue 18's range).
DETAIL_RANGE = (0.05, 0.5)
VS_AVIF = ("hyperthumbnail", "hyperthumbnail-thumbnail-only", "jpegthumb+avif", "jxl-full", "webp-full", "jpeg-full")


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def curve_points(rows: list[ResultRow], settings: list) -> list[dict]:
    """One averaged point per setting, in the order the settings were run."""
    by_setting: dict = defaultdict(list)
    for row in rows:
        by_setting[row.setting].append(row)
    points = []
    for setting in settings:
        group = by_setting.get(setting)
        if group:
            point = {"setting": setting, "images": len(group)}
            point.update({name: _mean([getattr(r, name) for r in group]) for name in CURVE_METRICS})
            points.append(point)
    return points


def preset_points(points: list[dict]) -> dict[str, dict]:
    """The hyperthumbnail points at the LOW/MEDIUM/HIGH rates, when they were run."""
    by_rate = {p["setting"]: p for p in points}
    return {name: by_rate[rate] for name, rate in RATE_PRESETS.items() if rate in by_rate}


def preset_bpp_range(presets: dict[str, dict]) -> tuple[float, float] | None:
    """The bpp range of the thumbnail presets (LOW..HIGH) that ran."""
    rates = [p["bpp"] for name, p in presets.items() if name in THUMBNAIL_PRESETS]
    return (min(rates), max(rates)) if len(rates) >= 2 else None


def _by_image(rows: list[ResultRow]) -> dict[str, dict[str, list[ResultRow]]]:
    by_image: dict[str, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_image[row.image][row.method].append(row)
    return by_image


def versus_avif(rows: list[ResultRow], curves: dict[str, list[dict]], within=DETAIL_RANGE) -> dict:
    """BD-PSNR of each method against full-resolution AVIF within ``within`` bpp (clipped to
    where both curves reach): overall (the averaged curves), per photo, and the photos' mean."""
    if not curves.get(AVIF):
        return {}
    by_image = _by_image(rows)
    out = {"range_bpp": list(within)}
    for name in VS_AVIF:
        if not curves.get(name):
            continue
        per_image = {image: _bd(_points(methods[AVIF]), _points(methods[name]), within)
                     for image, methods in by_image.items() if methods.get(AVIF) and methods.get(name)}  # fmt: skip
        present = [v for v in per_image.values() if v is not None]
        out[name] = {"overall_db": _bd(curves[AVIF], curves[name], within), "per_image_db": per_image,
                     "mean_of_images_db": float(np.mean(present)) if present else None,
                     "worst_image_db": min(present) if present else None}  # fmt: skip
    return out


def _bd(anchor: list[dict], test: list[dict], within=None, metric: str = "psnr_rgb") -> float | None:
    """BD-PSNR of two curves of averaged points on ``metric``, optionally within a bpp range."""
    anchor = [p for p in anchor if p.get(metric) is not None]
    test = [p for p in test if p.get(metric) is not None]
    return bd_psnr(
        [p["bpp"] for p in anchor],
        [p[metric] for p in anchor],
        [p["bpp"] for p in test],
        [p[metric] for p in test],
        within,
    )


def _points(rows: list[ResultRow]) -> list[dict]:
    """Rows as curve points in bpp order; points of equal bpp (a setting that no longer changes the
    bytes, e.g. thumbnail-only above HIGH) would make the fit singular and are kept once."""
    points, seen = [], set()
    for r in sorted(rows, key=lambda r: r.bpp):
        if r.bpp not in seen:
            seen.add(r.bpp)
            points.append({"bpp": r.bpp, "psnr_rgb": r.psnr_rgb, "thumb_psnr": r.thumb_psnr})
    return points


def preview_bd(rows: list[ResultRow], preview_method: str = HYPERTHUMBNAIL) -> dict:
    """What the preview costs: the HyperThumbnail's thumbnail against plain JPEG thumbnails of the
    same bytes (bicubic+jpeg's), both scored against the reference downscale; overall (averaged
    curves) and per photo. Negative: the preview is worse than a plain thumbnail of its size.
    ``preview_method``: whose rows give the thumbnail's bytes (a detail-layer file's thumbnail is
    judged by its own bytes, the thumbnail-only rows)."""
    by_image = _by_image(rows)
    per_image = {
        image: _bd(_points(methods[ANCHOR]), _points(methods[preview_method]), metric="thumb_psnr")
        for image, methods in by_image.items()
        if methods.get(ANCHOR) and methods.get(preview_method)
    }
    present = [v for v in per_image.values() if v is not None]
    return {"per_image_db": per_image, "worst_image_db": min(present) if present else None}


def ablation(rows_by_method: dict[str, list[ResultRow]], curves: dict[str, list[dict]], bpp_range) -> dict:
    """Each HyperThumbnail variant that ran: its BD-PSNR against the anchor and jpeg+sr, and at
    the MEDIUM rate its mean payload bytes, file bytes and export seconds."""
    table = {}
    for name, points in curves.items():
        if not name.startswith(HYPERTHUMBNAIL):
            continue
        medium = [r for r in rows_by_method[name] if r.setting == RATE_PRESETS["MEDIUM"]]
        table[name] = {
            "bd_psnr_vs_anchor_in_preset_range_db": None
            if bpp_range is None
            else _bd(curves.get(ANCHOR, []), points, bpp_range),
            "bd_psnr_vs_jpeg_sr_in_preset_range_db": (
                None if bpp_range is None or not curves.get(JPEG_SR) else _bd(curves[JPEG_SR], points, bpp_range)
            ),
            "medium_bytes": _mean([r.bytes for r in medium]),
            "medium_payload_bytes": _mean([r.payload_bytes for r in medium]),
            "medium_files_with_payload": sum(1 for r in medium if r.payload_bytes),
            "medium_encode_seconds": _mean([r.encode_seconds for r in medium]),
        }
    return table


def _finite_or_none(value):
    """JSON has no infinity: an exact reconstruction's PSNR is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def per_image_bd(rows: list[ResultRow]) -> dict[str, dict[str, float | None]]:
    """BD-PSNR vs the anchor of each method on each photo alone: where the gains are."""
    by_image: dict[str, dict[str, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_image[row.image][row.method].append(row)
    table = {}
    for image, methods in by_image.items():
        anchor = [{"bpp": r.bpp, "psnr_rgb": r.psnr_rgb} for r in sorted(methods.get(ANCHOR, []), key=lambda r: r.bpp)]
        table[image] = {
            name: _bd(anchor, [{"bpp": r.bpp, "psnr_rgb": r.psnr_rgb} for r in sorted(group, key=lambda r: r.bpp)])
            for name, group in methods.items()
            if name in (HYPERTHUMBNAIL, JPEG_SR) and anchor
        }
    return table


def summarise(evaluation: Evaluation) -> dict:
    """The content of summary.json."""
    rows_by_method: dict[str, list[ResultRow]] = defaultdict(list)
    for row in evaluation.rows:
        rows_by_method[row.method].append(row)
    curves = {name: curve_points(rows_by_method[name], settings) for name, settings in evaluation.methods.items()}
    presets = preset_points(curves.get(HYPERTHUMBNAIL, []))
    bpp_range = preset_bpp_range(presets)
    anchor = curves.get(ANCHOR, [])
    methods = {
        name: {
            "points": points,
            "bd_psnr_vs_anchor_db": _bd(anchor, points),
            "bd_psnr_vs_anchor_in_preset_range_db": (None if bpp_range is None else _bd(anchor, points, bpp_range)),
        }
        for name, points in curves.items()
    }
    if HYPERTHUMBNAIL in curves and curves.get(JPEG_SR):
        # What the encoder and the QPM add over the same decoder on standard JPEG thumbnails.
        baseline, ours = curves[JPEG_SR], curves[HYPERTHUMBNAIL]
        methods[HYPERTHUMBNAIL]["bd_psnr_vs_jpeg_sr_db"] = _bd(baseline, ours)
        methods[HYPERTHUMBNAIL]["bd_psnr_vs_jpeg_sr_in_preset_range_db"] = (
            None if bpp_range is None else _bd(baseline, ours, bpp_range)
        )
    preview_method = "hyperthumbnail-thumbnail-only" if curves.get("hyperthumbnail-thumbnail-only") else HYPERTHUMBNAIL
    preview = preview_bd(evaluation.rows, preview_method)
    preview["judged_by"] = preview_method
    if preview_method in curves and anchor:
        preview["overall_db"] = _bd(anchor, curves[preview_method], metric="thumb_psnr")
        preview["overall_in_preset_range_db"] = (
            None if bpp_range is None else _bd(anchor, curves[preview_method], bpp_range, metric="thumb_psnr")
        )
    summary = {
        "folder": str(evaluation.folder),
        "images": evaluation.images,
        "skipped_images": evaluation.skipped_images,
        "crop": evaluation.crop,
        "effort": evaluation.effort,
        "device": evaluation.device,
        "weights": evaluation.weights,
        "jpeg_sr_weights": evaluation.baseline_weights,
        "skipped_methods": evaluation.skipped_methods,
        "anchor": ANCHOR,
        "preset_bpp_range": None if bpp_range is None else list(bpp_range),
        "presets": {name: {"rate": RATE_PRESETS[name], **point} for name, point in presets.items()},
        "hyperthumbnail_marker_bytes": _mean(evaluation.marker_bytes),
        "methods": methods,
        "per_image_bd_psnr_vs_anchor_db": per_image_bd(evaluation.rows),
        "preview_bd_psnr_vs_plain_jpeg_thumbnails": preview,
        "ablation": ablation(rows_by_method, curves, bpp_range),
        "vs_avif": versus_avif(evaluation.rows, curves),
    }
    return _finite_or_none(summary)
