"""The rate-distortion plot, drawn with Pillow alone (no plotting library is a dependency).

x = bits per full-resolution pixel on a log scale, y = PSNR on RGB; one line with markers per
method, the HyperThumbnail presets labelled L/M/H. Drawn at twice the size and scaled down, so
lines and text come out antialiased.
"""

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

SIZE = (1000, 700)
SUPERSAMPLE = 2
MARGINS = {"left": 90, "right": 30, "top": 70, "bottom": 75}  # in output pixels
COLOURS = {
    "hyperthumbnail": (214, 39, 40),
    "bicubic+jpeg": (31, 119, 180),
    "jpeg+sr": (44, 160, 44),
    "jpeg-full": (255, 127, 14),
    "webp-full": (148, 103, 189),
}
SPARE_COLOURS = [(140, 86, 75), (227, 119, 194), (127, 127, 127), (23, 190, 207)]
MARKERS = ("circle", "square", "triangle", "diamond", "down")
GRID, AXIS, TEXT = (225, 225, 225), (60, 60, 60), (30, 30, 30)
PRESET_LABELS = {"LOW": "L", "MEDIUM": "M", "HIGH": "H"}


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size * SUPERSAMPLE)
    # An old Pillow, or one built without FreeType: the small bitmap font.
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def nice_step(span: float, target_ticks: int = 7) -> float:
    """1, 2 or 5 times a power of ten, giving about ``target_ticks`` ticks over ``span``."""
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def linear_ticks(lo: float, hi: float) -> list[float]:
    step = nice_step(hi - lo)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade, or every integer mantissa when the range is narrow."""
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in mantissas
            if lo <= m * 10.0**e <= hi
        ]
        if len(ticks) >= 4:
            return ticks
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


@dataclass
class Frame:
    """Maps data coordinates (bpp, dB) to pixels of the supersampled canvas."""

    x0: float
    x1: float
    y0: float
    y1: float
    bpp_lo: float
    bpp_hi: float
    db_lo: float
    db_hi: float

    def point(self, bpp: float, db: float) -> tuple[float, float]:
        t = (math.log10(bpp) - math.log10(self.bpp_lo)) / (math.log10(self.bpp_hi) - math.log10(self.bpp_lo))
        u = (db - self.db_lo) / (self.db_hi - self.db_lo)
        return self.x0 + t * (self.x1 - self.x0), self.y1 - u * (self.y1 - self.y0)


def _padded_range(values: list[float], log: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    pad = max((hi - lo) * 0.06, 0.05 if log else 0.5)
    lo, hi = lo - pad, hi + pad
    return (10**lo, 10**hi) if log else (lo, hi)


def _marker(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, colour) -> None:
    if shape == "circle":
        draw.ellipse(
            [x - r, y - r, x + r, y + r],
            fill=colour,
            outline="white",
            width=SUPERSAMPLE,
        )
    elif shape == "square":
        draw.rectangle(
            [x - r, y - r, x + r, y + r],
            fill=colour,
            outline="white",
            width=SUPERSAMPLE,
        )
    else:
        sides = {"triangle": (3, 0), "diamond": (4, 45), "down": (3, 180)}[shape]
        draw.regular_polygon((x, y, r * 1.25), sides[0], rotation=sides[1], fill=colour, outline="white")


def _text_centred(draw, xy, text, font, anchor="mm") -> None:
    draw.text(xy, text, fill=TEXT, font=font, anchor=anchor)


def _draw_axes(image: Image.Image, frame: Frame, x_label: str, y_label: str) -> None:
    draw = ImageDraw.Draw(image)
    s, small, medium = SUPERSAMPLE, _font(13), _font(15)
    for bpp in log_ticks(frame.bpp_lo, frame.bpp_hi):
        x, _ = frame.point(bpp, frame.db_lo)
        draw.line([x, frame.y0, x, frame.y1], fill=GRID, width=s)
        draw.line([x, frame.y1, x, frame.y1 + 6 * s], fill=AXIS, width=s)
        _text_centred(draw, (x, frame.y1 + 10 * s), _label(bpp), small, "mt")
    for db in linear_ticks(frame.db_lo, frame.db_hi):
        _, y = frame.point(frame.bpp_lo, db)
        draw.line([frame.x0, y, frame.x1, y], fill=GRID, width=s)
        draw.line([frame.x0 - 6 * s, y, frame.x0, y], fill=AXIS, width=s)
        _text_centred(draw, (frame.x0 - 10 * s, y), _label(db), small, "rm")
    draw.rectangle([frame.x0, frame.y0, frame.x1, frame.y1], outline=AXIS, width=s)
    _text_centred(draw, ((frame.x0 + frame.x1) / 2, frame.y1 + 42 * s), x_label, medium)
    _paste_vertical_text(image, y_label, medium, (28 * s, (frame.y0 + frame.y1) / 2))


def _paste_vertical_text(image: Image.Image, text: str, font, centre: tuple[float, float]) -> None:
    left, top, right, bottom = font.getbbox(text)
    label = Image.new("RGBA", (right - left + 4, bottom - top + 4), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2 - left, 2 - top), text, fill=TEXT, font=font)
    label = label.rotate(90, expand=True)
    image.paste(
        label,
        (int(centre[0] - label.width / 2), int(centre[1] - label.height / 2)),
        label,
    )


def _draw_curves(image: Image.Image, frame: Frame, curves: dict[str, list[tuple[float, float]]]) -> None:
    draw = ImageDraw.Draw(image)
    spare = iter(SPARE_COLOURS)
    for index, (name, points) in enumerate(curves.items()):
        colour = COLOURS.get(name) or next(spare, AXIS)
        pixels = [frame.point(bpp, db) for bpp, db in points]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=3 * SUPERSAMPLE, joint="curve")
        for x, y in pixels:
            _marker(draw, MARKERS[index % len(MARKERS)], x, y, 5 * SUPERSAMPLE, colour)


def _draw_preset_labels(image: Image.Image, frame: Frame, presets: dict[str, tuple[float, float]]) -> None:
    draw, font = ImageDraw.Draw(image), _font(13)
    for name, (bpp, db) in presets.items():
        x, y = frame.point(bpp, db)
        label = PRESET_LABELS.get(name, name)
        draw.text(
            (x - 8 * SUPERSAMPLE, y - 9 * SUPERSAMPLE),
            label,
            fill=COLOURS["hyperthumbnail"],
            font=font,
            anchor="rb",
        )


def _curve_pixels(frame: Frame, curves: dict[str, list[tuple[float, float]]]) -> list:
    """Pixels along every curve's segments (for finding where the legend hides least)."""
    pixels = []
    for points in curves.values():
        xy = [frame.point(bpp, db) for bpp, db in points]
        for (x0, y0), (x1, y1) in zip(xy, xy[1:] or xy):
            pixels += [(x0 + (x1 - x0) * t / 16, y0 + (y1 - y0) * t / 16) for t in range(17)]
    return pixels


def _legend_box(frame: Frame, size: tuple[float, float], curves) -> tuple[float, float]:
    """Top-left corner of the legend: lower right or upper left, whichever covers less of the
    curves (rate-distortion curves rise to the right, so those corners are usually empty)."""
    inset = 14 * SUPERSAMPLE
    corners = [
        (frame.x1 - inset - size[0], frame.y1 - inset - size[1]),
        (frame.x0 + inset, frame.y0 + inset),
    ]
    pixels = _curve_pixels(frame, curves)

    def covered(corner: tuple[float, float]) -> int:
        left, top = corner
        return sum(left <= x <= left + size[0] and top <= y <= top + size[1] for x, y in pixels)

    return min(corners, key=covered)


def _draw_legend(image: Image.Image, frame: Frame, curves) -> None:
    draw, font, s = ImageDraw.Draw(image), _font(14), SUPERSAMPLE
    names = list(curves)
    row, swatch = 24 * s, 34 * s
    text_width = max(int(draw.textlength(name, font=font)) for name in names)
    width = swatch + text_width + 30 * s
    height = row * len(names) + 12 * s
    left, top = _legend_box(frame, (width, height), curves)
    right, bottom = left + width, top + height
    draw.rectangle([left, top, right, bottom], fill="white", outline=(190, 190, 190), width=s)
    spare = iter(SPARE_COLOURS)
    for index, name in enumerate(names):
        colour = COLOURS.get(name) or next(spare, AXIS)
        y = top + 6 * s + row * index + row / 2
        x = left + 10 * s
        draw.line([x, y, x + swatch, y], fill=colour, width=3 * s)
        _marker(draw, MARKERS[index % len(MARKERS)], x + swatch / 2, y, 5 * s, colour)
        draw.text((x + swatch + 10 * s, y), name, fill=TEXT, font=font, anchor="lm")


def draw_rd_plot(
    curves: dict[str, list[tuple[float, float]]],
    title: str,
    presets: dict[str, tuple[float, float]] | None = None,
    x_label: str = "bits per full-resolution pixel (log scale)",
    y_label: str = "PSNR RGB (dB)",
) -> Image.Image:
    """RGB image of the curves (method -> [(bpp, PSNR dB), ...]), SIZE pixels; any positive
    quantity on the log x axis and any on y with their labels (the decoder frontier: time, BD)."""
    curves = {name: [(b, p) for b, p in points if b and b > 0 and p is not None] for name, points in curves.items()}
    curves = {name: points for name, points in curves.items() if points}
    s = SUPERSAMPLE
    image = Image.new("RGB", (SIZE[0] * s, SIZE[1] * s), "white")
    draw = ImageDraw.Draw(image)
    _text_centred(draw, (image.width / 2, 32 * s), title, _font(19))
    if not curves:
        _text_centred(draw, (image.width / 2, image.height / 2), "no results to plot", _font(16))
        return image.resize(SIZE, Image.LANCZOS)
    all_points = [point for points in curves.values() for point in points]
    bpp_lo, bpp_hi = _padded_range([b for b, _ in all_points], log=True)
    db_lo, db_hi = _padded_range([p for _, p in all_points], log=False)
    frame = Frame(
        x0=MARGINS["left"] * s,
        x1=(SIZE[0] - MARGINS["right"]) * s,
        y0=MARGINS["top"] * s,
        y1=(SIZE[1] - MARGINS["bottom"]) * s,
        bpp_lo=bpp_lo,
        bpp_hi=bpp_hi,
        db_lo=db_lo,
        db_hi=db_hi,
    )
    _draw_axes(image, frame, x_label, y_label)
    _draw_curves(image, frame, curves)
    _draw_preset_labels(image, frame, presets or {})
    _draw_legend(image, frame, curves)
    return image.resize(SIZE, Image.LANCZOS)
