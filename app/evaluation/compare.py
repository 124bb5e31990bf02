"""Side-by-side crops: ``hyperthumb compare PHOTO --region X,Y,W,H``.

Where ``eval`` gives averages, this shows one region of one photo as each method gives it back,
so a reader sees what the codec gains and where it fails. The region plus a context margin is
cut from the photo and coded with the eval methods (``methods``), at matched file sizes:

    original           the region itself
    bicubic+jpeg       the standard JPEG thumbnail whose bpp is closest to the HyperThumbnail's
    jpeg+sr            the same JPEG through the jpeg-sr-baseline decoder (if installed)
    hyperthumbnail     the codec at ``rate``, through the real file
    thumbnail          the HyperThumbnail's own preview, enlarged x4 nearest-neighbour

Only the region is shown (each panel enlarged by ``zoom``, nearest-neighbour); PSNR is measured
on the region, bpp over the whole coded crop (bytes cannot be split by region).

The coded crop's origin and size are multiples of 32 (clipped at the image's edges), so the
region sits on the same 4x grid as in the whole photo and sees the same context it would there.
The region is in displayed pixels, as in ``hyperthumb decode --region``: the crop is coded in
stored orientation, like a real file, and every panel is turned for display afterwards.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.codec.api import Codec
from app.codec.errors import CodecError
from app.codec.files.atomic import atomic_output
from app.codec.files.imageio import load_image
from app.codec.files.marker import SCALE
from app.codec.files.orientation import display_box_to_stored, display_size, to_display
from app.codec.files.tiling import Box

from . import metrics, standard
from .methods import (
    BicubicJpegMethod,
    HyperThumbnailMethod,
    JpegSrMethod,
    Photo,
    jpeg_sr_weights,
)
from .runner import MIN_SIDE

CONTEXT = 64  # pixels of context each side of the region, before alignment
ALIGN = 32  # the coded crop's origin and size are multiples of this (clipped at the edges)
MATCH_QUALITIES = tuple(range(10, 96))  # JPEG qualities searched for the closest bpp
MAX_ZOOM = 16
FONT_SIZE = 14
MARGIN, GAP, CAPTION_PAD, LINE_GAP = 10, 10, 6, 3
BACKGROUND, TEXT = (255, 255, 255), (20, 20, 20)


@dataclass
class Panel:
    """One column of the figure: the region as a method gives it back, and its caption."""

    key: str  # the eval method's name, or "original" / "thumbnail"
    title: str
    pixels: np.ndarray  # uint8, the region in display orientation, not yet enlarged
    bpp: float | None = None
    psnr: float | None = None
    note: str = ""  # extra words for stdout

    def caption(self) -> list[str]:
        parts = [self.title]
        if self.bpp is not None:
            parts.append(f"{self.bpp:.3f} bpp")
        if self.psnr is not None:
            suffix = " (thumb)" if self.key == "thumbnail" else ""
            parts.append(f"{self.psnr:.2f} dB{suffix}")
        return parts


@dataclass
class Comparison:
    region: tuple[int, int, int, int]  # x, y, w, h in displayed pixels
    crop: Box  # the coded crop, stored coordinates
    image_size: tuple[int, int]  # displayed width, height
    rate: float
    quality: int | None
    panels: list[Panel] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why not shown
    weights_id: str = ""
    weights_trained: bool = True


def parse_region(text: str) -> tuple[int, int, int, int]:
    """'x,y,w,h' -> four integers, x, y >= 0 and w, h > 0; CodecError otherwise."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise CodecError(f"region must be x,y,w,h (four integers), not {text!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise CodecError(f"region {text} needs x,y >= 0 and w,h > 0")
    return x, y, w, h


def context_box(region: Box, width: int, height: int) -> Box:
    """``region`` grown by CONTEXT each side, its origin rounded down and its far edge up to
    multiples of ALIGN, clipped to the width x height image (an edge of the image may end it
    anywhere: the photo itself ends there too)."""

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        start = max(0, lo - CONTEXT) // ALIGN * ALIGN
        end = min(limit, -(-(hi + CONTEXT) // ALIGN) * ALIGN)
        return start, end

    y0, y1 = span(region.y0, region.y1, height)
    x0, x1 = span(region.x0, region.x1, width)
    return Box(y0, y1, x0, x1)


def closest_quality(thumbnail: np.ndarray, pixels: int, target_bpp: float) -> int:
    """The JPEG quality (of MATCH_QUALITIES) whose thumbnail bpp is closest to ``target_bpp``."""

    def distance(quality: int) -> tuple[float, int]:
        size = len(standard.encode_thumbnail_jpeg(thumbnail, quality))
        return abs(size * 8 / pixels - target_bpp), quality

    return min(MATCH_QUALITIES, key=distance)


def _cut(image: np.ndarray, box: Box, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(to_display(image[box.y0 : box.y1, box.x0 : box.x1], orientation))


def compare_photo(
    path: Path,
    region: tuple[int, int, int, int],
    *,
    rate: float,
    weights_dir=None,
    device: str | None = None,
) -> Comparison:
    """Code the region's context crop with every method that can run; the region of each."""
    codec = Codec(weights_dir, device)
    weights = codec.weights()
    codec.model(weights)  # missing or broken weights fail before any work
    loaded = load_image(path)
    height, width = loaded.rgb.shape[:2]
    orientation = loaded.orientation
    shown_w, shown_h = display_size(width, height, orientation)
    x, y, w, h = region
    if x + w > shown_w or y + h > shown_h:
        raise CodecError(f"region {x},{y},{w},{h} lies outside the {shown_w}x{shown_h} image")
    if min(width, height) < MIN_SIDE:
        raise CodecError(f"{Path(path).name} is {width}x{height}, less than {MIN_SIDE} pixels a side")
    stored = display_box_to_stored(Box(y, y + h, x, x + w), width, height, orientation)
    crop = context_box(stored, width, height)
    rgb = np.ascontiguousarray(loaded.rgb[crop.y0 : crop.y1, crop.x0 : crop.x1])
    photo = Photo(Path(path).name, rgb, standard.reference_thumbnail(rgb))
    inside = Box(
        stored.y0 - crop.y0,
        stored.y1 - crop.y0,
        stored.x0 - crop.x0,
        stored.x1 - crop.x0,
    )
    original = _cut(rgb, inside, orientation)
    pixels = crop.width * crop.height
    result = Comparison(region, crop, (shown_w, shown_h), rate, None)
    result.weights_id, result.weights_trained = weights.model_id, weights.trained

    def panel(key: str, title: str, coded, note: str = "") -> Panel:
        shown = _cut(coded.reconstruction, inside, orientation)
        bpp = coded.num_bytes * 8 / pixels
        return Panel(key, title, shown, bpp, metrics.psnr(shown, original), note)

    with tempfile.TemporaryDirectory(prefix="hyperthumb-compare-") as workdir:
        ours = HyperThumbnailMethod(codec, weights, [rate], Path(workdir))
        coded_ours = ours.code(photo, rate)
    marker = ours.marker_bytes[-1]
    hyper = panel(
        ours.name,
        f"HyperThumbnail r{rate:g}",
        coded_ours,
        f"rate {rate:g}, {coded_ours.num_bytes} bytes incl. {marker}-byte marker",
    )
    quality = closest_quality(photo.reference_thumbnail, pixels, hyper.bpp)
    result.quality = quality
    coded_jpeg = BicubicJpegMethod(MATCH_QUALITIES).code(photo, quality)
    result.panels += [
        Panel("original", "Original", original, note=_crop_note(region, crop)),
        panel(
            BicubicJpegMethod.name,
            f"bicubic+JPEG q{quality}",
            coded_jpeg,
            f"quality {quality}, {coded_jpeg.num_bytes} bytes",
        ),
    ]
    sr_weights, reason = jpeg_sr_weights(codec, like=weights)
    if sr_weights is None:
        result.skipped[JpegSrMethod.name] = reason or "unavailable"
    else:
        coded_sr = JpegSrMethod(codec, sr_weights, MATCH_QUALITIES).code(photo, quality)
        note = f"quality {quality}, {coded_sr.num_bytes} bytes, {sr_weights.model_id}"
        result.panels.append(panel(JpegSrMethod.name, f"JPEG+SR q{quality}", coded_sr, note))
    result.panels.append(hyper)
    result.panels.append(_preview_panel(coded_ours.thumbnail, photo, inside, orientation, hyper.bpp))
    return result


def _crop_note(region: tuple[int, int, int, int], crop: Box) -> str:
    x, y, w, h = region
    return (
        f"region {w}x{h} at {x},{y}; coded crop {crop.width}x{crop.height} at "
        f"{crop.x0},{crop.y0} (stored pixels); bpp below are over the coded crop"
    )


def _preview_panel(thumbnail: np.ndarray, photo: Photo, inside: Box, orientation: int, bpp: float) -> Panel:
    """The file's own thumbnail over the region, each pixel a SCALE x SCALE block; its PSNR
    is against the reference thumbnail, on the thumbnail pixels the region touches."""
    big = thumbnail.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
    shown = _cut(big, inside, orientation)
    t0, t1 = inside.y0 // SCALE, -(-inside.y1 // SCALE)
    s0, s1 = inside.x0 // SCALE, -(-inside.x1 // SCALE)
    score = metrics.psnr(thumbnail[t0:t1, s0:s1], photo.reference_thumbnail[t0:t1, s0:s1])
    note = f"{thumbnail.shape[1]}x{thumbnail.shape[0]} thumbnail, PSNR vs reference"
    return Panel("thumbnail", "Thumbnail (preview)", shown, bpp, score, note)


def enlarge(pixels: np.ndarray, zoom: int) -> np.ndarray:
    """Nearest-neighbour: each pixel becomes a zoom x zoom block."""
    return pixels.repeat(zoom, axis=0).repeat(zoom, axis=1)


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    # An old Pillow, or one built without FreeType: the small bitmap font.
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(np.ceil(right - left))


def _caption_lines(draw, parts: list[str], width: int, font) -> list[str]:
    """The caption on one line if it fits the panel's width, else one part a line."""
    line = ", ".join(parts)
    return [line] if _text_width(draw, line, font) <= width else parts


def render(panels: list[Panel], zoom: int) -> Image.Image:
    """Panels side by side, top-aligned from (MARGIN, MARGIN), a caption under each."""
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    _, top, _, bottom = probe.textbbox((0, 0), "Ag(0.9)", font=font)
    line_height = int(np.ceil(bottom - top)) + LINE_GAP
    enlarged = [enlarge(p.pixels, zoom) for p in panels]
    columns = []  # (x, width, caption lines)
    x = MARGIN
    for panel, pixels in zip(panels, enlarged, strict=True):
        lines = _caption_lines(probe, panel.caption(), pixels.shape[1], font)
        width = max(pixels.shape[1], *(_text_width(probe, t, font) for t in lines))
        columns.append((x, width, lines))
        x += width + GAP
    panel_height = max(p.shape[0] for p in enlarged)
    most_lines = max(len(lines) for _, _, lines in columns)
    size = (
        x - GAP + MARGIN,
        MARGIN + panel_height + CAPTION_PAD + most_lines * line_height + MARGIN,
    )
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    for (left, _, lines), pixels in zip(columns, enlarged, strict=True):
        image.paste(Image.fromarray(pixels), (left, MARGIN))
        for row, text in enumerate(lines):
            y = MARGIN + panel_height + CAPTION_PAD + row * line_height
            draw.text((left, y - top), text, fill=TEXT, font=font)
    return image


def write_png(image: Image.Image, out: Path, photo: Path) -> None:
    """Write atomically, replacing an earlier figure but never the photo itself."""
    if out.suffix.lower() != ".png":
        raise CodecError(f"output must be a .png file, not {out.name}")
    if out.exists() and out.resolve() == Path(photo).resolve():
        raise CodecError("refusing to overwrite the photo with the comparison")
    with atomic_output(out, force=True) as tmp:
        image.save(tmp, format="PNG")


def describe(panel: Panel) -> str:
    """One stdout line per panel."""
    bpp = "" if panel.bpp is None else f"{panel.bpp:.4f} bpp"
    psnr = "" if panel.psnr is None else f"{panel.psnr:.2f} dB"
    return f"{panel.key:16s} {bpp:>11s} {psnr:>9s}  {panel.note}".rstrip()
