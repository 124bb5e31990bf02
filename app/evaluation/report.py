"""Write an evaluation's results (results.csv, summary.json, summary.md, rd_plot.png) and print the table.

``summary.md`` holds the same tables in Markdown, so docs quote the command's own output.

Files are written atomically and replace those of an earlier run in the same folder.
"""

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import TextIO

from app.codec.files.atomic import atomic_output, atomic_write_bytes

from .plot import draw_rd_plot
from .runner import Evaluation, ResultRow
from .summary import ANCHOR, HYPERTHUMBNAIL, JPEG_SR

CSV_NAME, SUMMARY_NAME, PLOT_NAME = "results.csv", "summary.json", "rd_plot.png"
MARKDOWN_NAME = "summary.md"
CSV_DECIMALS = {
    "bpp": 6,
    "psnr_rgb": 4,
    "psnr_y": 4,
    "ssim_y": 6,
    "thumb_psnr": 4,
    "seconds": 4,
}


def _csv_value(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "nan"
    if name in CSV_DECIMALS:
        return f"{value:.{CSV_DECIMALS[name]}f}"
    return str(value)


def results_csv(rows: list[ResultRow]) -> str:
    names = [f.name for f in dataclasses.fields(ResultRow)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_value(name, getattr(row, name)) for name in names])
    return out.getvalue()


def plot_title(evaluation: Evaluation) -> str:
    count = len(evaluation.images)
    crop = f", centre {evaluation.crop}px crops" if evaluation.crop else ""
    effort = f", export effort {evaluation.effort}" if evaluation.effort != "default" else ""
    name = evaluation.folder.resolve().name or str(evaluation.folder)
    return f"Rate-distortion on {name}: {count} image{'s' if count != 1 else ''}{crop}{effort}"


def write_report(evaluation: Evaluation, summary: dict, out_dir: Path) -> list[Path]:
    """Write the four files into ``out_dir`` (created if needed); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / CSV_NAME
    summary_path = out_dir / SUMMARY_NAME
    plot_path = out_dir / PLOT_NAME
    summary_text = json.dumps(summary, indent=2) + "\n"
    atomic_write_bytes(csv_path, results_csv(evaluation.rows).encode(), force=True)
    atomic_write_bytes(summary_path, summary_text.encode(), force=True)
    markdown_path = out_dir / MARKDOWN_NAME
    atomic_write_bytes(markdown_path, summary_markdown(summary).encode(), force=True)
    curves = {name: [(p["bpp"], p["psnr_rgb"]) for p in m["points"]] for name, m in summary["methods"].items()}
    presets = {name: (p["bpp"], p["psnr_rgb"]) for name, p in summary["presets"].items() if p["psnr_rgb"] is not None}
    image = draw_rd_plot(curves, plot_title(evaluation), presets)
    with atomic_output(plot_path, force=True) as tmp:
        image.save(tmp, format="PNG")
    return [csv_path, summary_path, markdown_path, plot_path]


def _cell(value, decimals: int, width: int = 7) -> str:
    """A right-aligned number, or '-' where there is none."""
    return ("-" if value is None else f"{value:.{decimals}f}").rjust(width)


def _signed_db(value) -> str:
    return "n/a (no overlap)" if value is None else f"{value:+.2f} dB"


def print_summary(summary: dict, stream: TextIO) -> None:
    """The averaged curves, BD-PSNR against the anchor and the preset points, as text."""
    header = f"{'method':<15} {'setting':>7} {'bpp':>8} {'PSNR':>7} {'PSNR-Y':>7} {'SSIM-Y':>7} {'thumb':>7}"
    print(header, file=stream)
    for name, method in summary["methods"].items():
        for p in method["points"]:
            cells = [
                _cell(p["bpp"], 4, 8),
                _cell(p["psnr_rgb"], 2),
                _cell(p["psnr_y"], 2),
                _cell(p["ssim_y"], 4),
            ]
            print(
                f"{name:<15} {p['setting']:>7g} {' '.join(cells)} {_cell(p['thumb_psnr'], 2)}",
                file=stream,
            )
    print(
        f"\nBD-PSNR vs {ANCHOR} (whole overlap; HyperThumbnail preset range):",
        file=stream,
    )
    for name, method in summary["methods"].items():
        if name != ANCHOR:
            whole = _signed_db(method["bd_psnr_vs_anchor_db"])
            presets = _signed_db(method["bd_psnr_vs_anchor_in_preset_range_db"])
            print(f"  {name:<15} {whole}; {presets}", file=stream)
    ours = summary["methods"].get(HYPERTHUMBNAIL, {})
    if "bd_psnr_vs_jpeg_sr_db" in ours:
        whole, presets = (
            _signed_db(ours["bd_psnr_vs_jpeg_sr_db"]),
            _signed_db(ours["bd_psnr_vs_jpeg_sr_in_preset_range_db"]),
        )
        print(f"\nBD-PSNR of {HYPERTHUMBNAIL} vs {JPEG_SR}: {whole}; {presets}", file=stream)
    if summary["presets"]:
        print(f"\n{HYPERTHUMBNAIL} presets:", file=stream)
    for name, p in summary["presets"].items():
        psnr, thumb = _cell(p["psnr_rgb"], 1, 0), _cell(p["thumb_psnr"], 1, 0)
        print(
            f"  {name}: {p['bpp']:.3f} bpp, {psnr} dB, thumbnail {thumb} dB",
            file=stream,
        )
    preview = summary.get("preview_bd_psnr_vs_plain_jpeg_thumbnails") or {}
    if "overall_db" in preview:
        print(
            f"\npreview (thumbnail) BD-PSNR vs plain JPEG thumbnails of the same bytes: {_signed_db(preview['overall_db'])}; "
            f"worst photo {_signed_db(preview['worst_image_db'])}",
            file=stream,
        )
    if len(summary.get("ablation") or {}) > 1:
        print("\nablation (preset bpp range; MEDIUM means):", file=stream)
        for name, row in summary["ablation"].items():
            print(
                f"  {name:<32} vs {ANCHOR} {_signed_db(row['bd_psnr_vs_anchor_in_preset_range_db'])}, "
                f"vs {JPEG_SR} {_signed_db(row['bd_psnr_vs_jpeg_sr_in_preset_range_db'])}, "
                f"{_md(row['medium_bytes'], 0)} B, payload {_md(row['medium_payload_bytes'], 0)} B, "
                f"export {_md(row['medium_encode_seconds'], 1)} s",
                file=stream,
            )
    vs_avif = summary.get("vs_avif") or {}
    if len(vs_avif) > 1:
        lo, hi = vs_avif["range_bpp"]
        print(f"\nBD-PSNR vs avif-full, {lo:g}-{hi:g} bpp (averaged curves; mean of photos; worst photo):", file=stream)
        for name, row in _avif_rows(vs_avif):
            print(
                f"  {name:<30} {_signed_db(row['overall_db'])}; {_signed_db(row['mean_of_images_db'])}; "
                f"{_signed_db(row['worst_image_db'])}",
                file=stream,
            )
    timing = _decode_times(summary)
    if timing:
        print(
            "\nfull decode time, mean over photos (s): " + ", ".join(f"{n} {t:.2f}" for n, t in timing.items()),
            file=stream,
        )
    for name, reason in summary["skipped_methods"].items():
        print(f"\nskipped {name}: {reason}", file=stream)


def _avif_rows(vs_avif: dict) -> list[tuple[str, dict]]:
    return [(name, row) for name, row in vs_avif.items() if isinstance(row, dict)]


def _decode_times(summary: dict) -> dict[str, float]:
    """Mean full-reconstruction seconds of each HyperThumbnail curve (with and without the layer)."""
    out = {}
    for name, method in summary["methods"].items():
        times = [p["decode_seconds"] for p in method["points"] if p.get("decode_seconds") is not None]
        if times:
            out[name] = sum(times) / len(times)
    return out


def _md(value, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def summary_markdown(summary: dict) -> str:
    """Presets, BD-PSNR and every curve point as Markdown tables."""
    lines = []
    if summary["presets"]:
        lines += ["| preset | rate | bpp | PSNR RGB (dB) | PSNR Y (dB) | SSIM Y | thumbnail PSNR (dB) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for name, p in summary["presets"].items():
            lines.append(
                f"| {name} | {p['rate']:g} | {_md(p['bpp'], 4)} | {_md(p['psnr_rgb'], 2)} | "
                f"{_md(p['psnr_y'], 2)} | {_md(p['ssim_y'], 4)} | {_md(p['thumb_psnr'], 2)} |"
            )
        lines.append("")
    lines += [f"| method | BD-PSNR vs {ANCHOR}, whole overlap (dB) | BD-PSNR vs {ANCHOR}, preset bpp range (dB) |",
              "| --- | --- | --- |"]  # fmt: skip
    for name, method in summary["methods"].items():
        if name != ANCHOR:
            whole, presets = method["bd_psnr_vs_anchor_db"], method["bd_psnr_vs_anchor_in_preset_range_db"]
            lines.append(f"| {name} | {_md(whole, 2)} | {_md(presets, 2)} |")
    ours = summary["methods"].get(HYPERTHUMBNAIL, {})
    if "bd_psnr_vs_jpeg_sr_db" in ours:
        lines += ["", f"| method | BD-PSNR vs {JPEG_SR}, whole overlap (dB) | BD-PSNR vs {JPEG_SR}, preset bpp range (dB) |",
                  "| --- | --- | --- |",
                  (f"| {HYPERTHUMBNAIL} | {_md(ours['bd_psnr_vs_jpeg_sr_db'], 2)} | "
                   f"{_md(ours['bd_psnr_vs_jpeg_sr_in_preset_range_db'], 2)} |")]  # fmt: skip
    per_image = summary.get("per_image_bd_psnr_vs_anchor_db") or {}
    if per_image:
        lines += ["", f"| image | {HYPERTHUMBNAIL}: BD-PSNR vs {ANCHOR} (dB) | {JPEG_SR}: BD-PSNR vs {ANCHOR} (dB) |",
                  "| --- | --- | --- |"]  # fmt: skip
        for image, values in per_image.items():
            lines.append(f"| {image} | {_md(values.get(HYPERTHUMBNAIL), 2)} | {_md(values.get(JPEG_SR), 2)} |")
    lines += _preview_and_ablation_markdown(summary)
    lines += _avif_markdown(summary)
    lines += ["", "| method | setting | bpp | PSNR RGB (dB) | PSNR Y (dB) | SSIM Y | thumbnail PSNR (dB) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, method in summary["methods"].items():
        for p in method["points"]:
            lines.append(
                f"| {name} | {p['setting']:g} | {_md(p['bpp'], 4)} | {_md(p['psnr_rgb'], 2)} | "
                f"{_md(p['psnr_y'], 2)} | {_md(p['ssim_y'], 4)} | {_md(p['thumb_psnr'], 2)} |"
            )
    for name, reason in summary["skipped_methods"].items():
        lines.append(f"\nSkipped {name}: {reason}")
    return "\n".join(lines) + "\n"


def _avif_markdown(summary: dict) -> list[str]:
    """BD-PSNR against full-resolution AVIF in the detail range, overall and per photo."""
    vs_avif = summary.get("vs_avif") or {}
    rows = _avif_rows(vs_avif)
    if not rows:
        return []
    lo, hi = vs_avif["range_bpp"]
    lines = ["", f"BD-PSNR vs avif-full, {lo:g}-{hi:g} bpp (clipped to where both curves reach):", "",
             "| method | averaged curves (dB) | mean of photos (dB) | worst photo (dB) |", "| --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {name} | {_md(row['overall_db'], 2)} | {_md(row['mean_of_images_db'], 2)} | {_md(row['worst_image_db'], 2)} |"
              for name, row in rows]  # fmt: skip
    images = sorted({image for _, row in rows for image in row["per_image_db"]})
    lines += ["", "| image | " + " | ".join(name for name, _ in rows) + " |", "| --- |" + " --- |" * len(rows)]
    lines += [f"| {image} | " + " | ".join(_md(row["per_image_db"].get(image), 2) for _, row in rows) + " |"
              for image in images]  # fmt: skip
    timing = _decode_times(summary)
    if timing:
        lines += ["", "| curve | full decode, mean (s) |", "| --- | --- |"]
        lines += [f"| {name} | {t:.2f} |" for name, t in timing.items()]
    return lines


def _preview_and_ablation_markdown(summary: dict) -> list[str]:
    """The preview's cost against plain JPEG thumbnails, per photo, and the ablation table."""
    lines = []
    preview = summary.get("preview_bd_psnr_vs_plain_jpeg_thumbnails") or {}
    if preview.get("per_image_db"):
        lines += ["", (f"Preview: thumbnail BD-PSNR vs plain JPEG thumbnails of the same bytes ({ANCHOR}'s), "
                       f"overall {_md(preview.get('overall_db'), 2)} dB, worst photo {_md(preview.get('worst_image_db'), 2)} dB."),
                  "", "| image | preview BD-PSNR vs plain JPEG thumbnail (dB) |", "| --- | --- |"]  # fmt: skip
        lines += [f"| {image} | {_md(value, 2)} |" for image, value in preview["per_image_db"].items()]
    table = summary.get("ablation") or {}
    if len(table) > 1:
        lines += ["", (f"| variant | BD-PSNR vs {ANCHOR}, preset range (dB) | BD-PSNR vs {JPEG_SR}, preset range (dB) | "
                       "MEDIUM bytes | MEDIUM payload bytes, mean over all files (files with one) | MEDIUM export (s) |"),
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for name, row in table.items():
            lines.append(
                f"| {name} | {_md(row['bd_psnr_vs_anchor_in_preset_range_db'], 2)} | "
                f"{_md(row['bd_psnr_vs_jpeg_sr_in_preset_range_db'], 2)} | {_md(row['medium_bytes'], 0)} | "
                f"{_md(row['medium_payload_bytes'], 0)} ({row['medium_files_with_payload']}) | "
                f"{_md(row['medium_encode_seconds'], 1)} |"
            )
    return lines
