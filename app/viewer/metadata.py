"""What the metadata panel says about a document: plain facts as (label, text) rows, the
quantization tables as 8x8 grids, and the EXIF highlights people look for. No Qt here."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from app.viewer.codec_bridge import (
    ImageDocument,
    Labels,
    display_size,
    exif_tags,
    quantization_tables,
)
from app.viewer.describe import format_name, rating_text
from app.viewer.histogram import Histogram, clipping_rows, histogram_of
from app.viewer.units import bpp_text, exact_size_text

Rows = list[tuple[str, str]]

ORIENTATION_WORDS = {
    2: "mirrored left-right", 3: "turned 180\u00b0", 4: "mirrored top-bottom", 5: "transposed",
    6: "turned 90\u00b0 clockwise", 7: "transversed", 8: "turned 90\u00b0 anticlockwise",
}  # fmt: skip

# piexif tag numbers (kept here so the words and the tags sit side by side)
MAKE, MODEL, DATETIME = 271, 272, 306
EXPOSURE_TIME, F_NUMBER, ISO, DATETIME_ORIGINAL = 33434, 33437, 34855, 36867
FOCAL_LENGTH, FOCAL_35MM, LENS_MAKE, LENS_MODEL = 37386, 41989, 42035, 42036


@dataclass(frozen=True)
class Metadata:
    """Everything the panel shows. ``tables``: (title, 8x8 grid); ``error``: why it could not open."""

    title: str = ""
    rows: Rows = field(default_factory=list)
    tables: list[tuple[str, list[list[int]]]] = field(default_factory=list)
    exif: Rows = field(default_factory=list)
    error: str | None = None
    capture: str | None = None  # one line: exposure, aperture, ISO, focal length, camera and lens
    histogram: Histogram | None = None  # of the preview's pixels

    def value(self, label: str) -> str | None:
        """The text of the first row (facts or EXIF) called ``label``."""
        return next((text for name, text in self.rows + self.exif if name == label), None)


def describe_document(document: ImageDocument, labels: Labels | None = None) -> Metadata:
    """The panel's page for ``document``; ``labels``: its rating and colour label (XMP)."""
    path = document.path
    width, height = display_size(*document.full_size, document.orientation)
    preview_w, preview_h = display_size(document.preview.shape[1], document.preview.shape[0], document.orientation)
    rows: Rows = [
        ("File", path.name),
        ("Folder", str(path.parent)),
        ("Size on disk", exact_size_text(document.file_size)),
    ]
    tables = []
    marker = document.marker
    if marker is not None:
        rows += [
            ("Type", "HyperThumbnail (JPEG)"),
            ("Image size", f"{preview_w}x{preview_h} (the thumbnail)"),
            ("Full size", f"{width}x{height}"),
            ("Scale", f"x{marker.scale}"),
            ("Model", marker.model_id),
            ("Weights", marker.weights_sha256[:12]),
            ("Rate", "\u2014" if marker.rate is None else f"{marker.rate:.2f}"),
            ("Bits per pixel", f"{bpp_text(document.bits_per_pixel)} (file bits per full-size pixel)"),
            ("Format version", str(marker.version)),
        ]
        grids = quantization_tables(document)
        if grids is not None:
            tables = [("Luma quantization table", grids[0]), ("Chroma quantization table", grids[1])]
    else:
        rows += [("Type", format_name(path)), ("Image size", f"{width}x{height}")]
    if document.orientation in ORIENTATION_WORDS:
        rows.append(("Orientation", f"{ORIENTATION_WORDS[document.orientation]} (EXIF {document.orientation})"))
    labels = labels or Labels()
    rows.append(("Rating", rating_text(labels.rating) or "none"))
    rows.append(("Colour label", labels.label or "none"))
    histogram = histogram_of(document.preview)
    rows += clipping_rows(histogram)
    rows += [("Note", note) for note in document.notes]
    exif = exif_highlights(document.exif)
    capture = capture_summary(document.exif)
    if capture:
        exif.insert(0, ("Capture", capture))
    return Metadata(path.name, rows, tables, exif, capture=capture, histogram=histogram)


def describe_error(path: Path, message: str) -> Metadata:
    rows: Rows = [("File", path.name), ("Folder", str(path.parent))]
    try:
        rows.append(("Size on disk", exact_size_text(path.stat().st_size)))
    except OSError:
        pass
    return Metadata(path.name, rows, error=message)


# --------------------------------------------------------------------------- EXIF


def _text(value) -> str | None:
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _ratio(value) -> Fraction | None:
    """A rational tag ((num, den) from piexif) or an integer as a Fraction; None if unusable."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return Fraction(value[0], value[1]) if value[1] else None
    if isinstance(value, int):
        return Fraction(value)
    return None


def _number(value: Fraction) -> str:
    return f"{float(value):.1f}".rstrip("0").rstrip(".")


def exposure_text(value) -> str | None:
    seconds = _ratio(value)
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)} s"
    return f"{_number(seconds)} s"


def _date_text(value) -> str | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' as 'YYYY-MM-DD HH:MM:SS'."""
    text = _text(value)
    if text and len(text) >= 10 and text[4] == ":" and text[7] == ":":
        return f"{text[:4]}-{text[5:7]}-{text[8:]}"
    return text


def _camera(main: dict) -> str:
    make, model = _text(main.get(MAKE)), _text(main.get(MODEL))
    if make and model and model.lower().startswith(make.split()[0].lower()):
        make = None  # "Canon" + "Canon EOS 5D": say it once
    return " ".join(part for part in (make, model) if part)


def _iso(photo: dict) -> int | None:
    iso = photo.get(ISO)
    if isinstance(iso, tuple) and iso:
        iso = iso[0]
    return iso if isinstance(iso, int) and iso > 0 else None


def capture_summary(exif: bytes | None) -> str | None:
    """One line of how the photo was taken, as photographers say it: "1/250 s · f/2.8 · ISO 200 ·
    50 mm (75 mm equiv.) · Fujifilm X-T4 · XF35mmF1.4 R"; what the EXIF lacks is left out. Read
    with the bounded EXIF reader (``exif_tags``)."""
    tags = exif_tags(exif)
    main, photo = tags.get("0th", {}), tags.get("Exif", {})
    parts = []
    exposure = exposure_text(photo.get(EXPOSURE_TIME))
    if exposure:
        parts.append(exposure)
    f_number = _ratio(photo.get(F_NUMBER))
    if f_number:
        parts.append(f"f/{_number(f_number)}")
    iso = _iso(photo)
    if iso:
        parts.append(f"ISO {iso}")
    focal = _ratio(photo.get(FOCAL_LENGTH))
    equivalent = photo.get(FOCAL_35MM)
    if focal:
        text = f"{_number(focal)} mm"
        if isinstance(equivalent, int) and equivalent and equivalent != round(focal):
            text += f" ({equivalent} mm equiv.)"
        parts.append(text)
    elif isinstance(equivalent, int) and equivalent:
        parts.append(f"{equivalent} mm equiv.")
    parts += [part for part in (_camera(main), _text(photo.get(LENS_MODEL))) if part]
    return " \u00b7 ".join(parts) or None


def exif_highlights(exif: bytes | None) -> Rows:
    """Camera, lens, date taken, exposure, aperture, focal length, ISO and whether GPS is present."""
    tags = exif_tags(exif)
    if not tags:
        return []
    main, photo, gps = tags.get("0th", {}), tags.get("Exif", {}), tags.get("GPS", {})
    rows: Rows = []
    camera = _camera(main)
    if camera:
        rows.append(("Camera", camera))
    lens = _text(photo.get(LENS_MODEL))
    if lens:
        rows.append(("Lens", lens))
    taken = _date_text(photo.get(DATETIME_ORIGINAL)) or _date_text(main.get(DATETIME))
    if taken:
        rows.append(("Date taken", taken))
    exposure = exposure_text(photo.get(EXPOSURE_TIME))
    if exposure:
        rows.append(("Exposure", exposure))
    f_number = _ratio(photo.get(F_NUMBER))
    if f_number:
        rows.append(("Aperture", f"f/{_number(f_number)}"))
    focal = _ratio(photo.get(FOCAL_LENGTH))
    if focal:
        text = f"{_number(focal)} mm"
        equivalent = photo.get(FOCAL_35MM)
        if isinstance(equivalent, int) and equivalent and equivalent != round(focal):
            text += f" ({equivalent} mm in 35 mm terms)"
        rows.append(("Focal length", text))
    iso = _iso(photo)
    if iso:
        rows.append(("ISO", str(iso)))
    has_position = any(key in gps for key in (1, 2, 3, 4))  # latitude/longitude and their refs
    rows.append(("GPS position", "yes" if has_position else "no"))
    return rows
