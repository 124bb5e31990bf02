"""HEIC/HEIF (pillow-heif) and camera RAW files (rawpy/LibRaw) read by every path: the viewer's
open, the strip, ``hyperthumb encode`` and export (``imageio.load_image``).

RAW files are made here: rawpy cannot write, so ``build_dng`` writes a minimal valid DNG by hand
(an uncompressed 16-bit RGGB CFA in IFD0 with the DNG tags LibRaw needs, and optionally a small
JPEG preview in a SubIFD), which LibRaw opens like a camera's."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import piexif
import pytest
import rawpy
from codec_fixtures import make_weights
from PIL import Image

from app.cli import describe, main
from app.codec.errors import ImageLoadError
from app.codec.files.document import open_image
from app.codec.files.imageio import load_image
from app.codec.files.raw import DEVELOPED_NOTE
from app.synthetic import photo_like

RED, BLUE = (220, 40, 30), (20, 60, 200)
PREVIEW_COLOUR = (200, 100, 50)


def _ifd(entries: list[tuple[int, int, object]], at: int) -> bytes:
    """One little-endian TIFF IFD placed at offset ``at``, its out-of-line values right after it."""
    fmt = {1: "B", 3: "H", 4: "I", 5: "I", 10: "i"}
    entries = sorted(entries, key=lambda e: e[0])
    data_at = at + 2 + 12 * len(entries) + 4
    head, data = struct.pack("<H", len(entries)), b""
    for tag, kind, values in entries:
        if kind == 2:  # ASCII
            raw, count = values.encode() + b"\0", len(values) + 1
        else:
            flat = [x for v in values for x in v] if kind in (5, 10) else list(values)
            raw, count = struct.pack(f"<{len(flat)}{fmt[kind]}", *flat), len(values)
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += raw + b"\0" * (len(raw) % 2)
    return head + struct.pack("<I", 0) + data


def build_dng(cfa: np.ndarray, *, orientation: int = 1, preview: np.ndarray | None = None) -> bytes:
    """A DNG 1.4 file: ``cfa`` (uint16, RGGB, white level 4095) uncompressed in IFD0, and
    ``preview`` (uint8 RGB) as a baseline JPEG in a SubIFD (NewSubFileType 1), as cameras do."""
    height, width = cfa.shape
    pixels = cfa.astype("<u2").tobytes()
    jpeg = b""
    if preview is not None:
        buf = io.BytesIO()
        Image.fromarray(preview).save(buf, "JPEG", quality=95)
        jpeg = buf.getvalue()
    pixels_at, jpeg_at = 8, 8 + len(pixels)
    ifd0_at = jpeg_at + len(jpeg) + (len(jpeg) % 2)

    def ifd0(sub_at: int) -> list:
        entries = [
            (254, 4, [0]), (256, 4, [width]), (257, 4, [height]), (258, 3, [16]), (259, 3, [1]),
            (262, 3, [32803]),  # PhotometricInterpretation: CFA
            (271, 2, "Test"), (272, 2, "Camera"), (273, 4, [pixels_at]), (274, 3, [orientation]),
            (277, 3, [1]), (278, 4, [height]), (279, 4, [len(pixels)]), (284, 3, [1]),
            (33421, 3, [2, 2]), (33422, 1, [0, 1, 1, 2]),  # CFARepeatPatternDim, CFAPattern: RGGB
            (50706, 1, [1, 4, 0, 0]), (50708, 2, "Test Camera"),  # DNGVersion, UniqueCameraModel
            (50714, 4, [0]), (50717, 4, [4095]),  # BlackLevel, WhiteLevel
            (50721, 10, [(1, 1), (0, 1), (0, 1), (0, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]),  # ColorMatrix1
            (50728, 5, [(1, 1), (1, 1), (1, 1)]), (50778, 3, [21]),  # AsShotNeutral, CalibrationIlluminant1 D65
        ]  # fmt: skip
        return entries + ([(330, 4, [sub_at])] if preview is not None else [])  # SubIFDs

    sub_at = ifd0_at + len(_ifd(ifd0(0), ifd0_at))
    out = b"II*\0" + struct.pack("<I", ifd0_at) + pixels + jpeg
    out += b"\0" * (ifd0_at - len(out)) + _ifd(ifd0(sub_at), ifd0_at)
    if preview is not None:
        ph, pw = preview.shape[:2]
        sub = [
            (254, 4, [1]), (256, 4, [pw]), (257, 4, [ph]), (258, 3, [8, 8, 8]), (259, 3, [7]), (262, 3, [6]),
            (273, 4, [jpeg_at]), (277, 3, [3]), (278, 4, [ph]), (279, 4, [len(jpeg)]), (284, 3, [1]),
        ]  # fmt: skip
        out += _ifd(sub, sub_at)
    return out


def _cfa(width: int = 96, height: int = 64) -> np.ndarray:
    """A flat orange scene on an RGGB sensor: R 3000, G 2000, B 1000 of 4095."""
    cfa = np.empty((height, width), np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2], cfa[1::2, 0::2], cfa[1::2, 1::2] = 3000, 2000, 2000, 1000
    return cfa


def _preview(width: int = 48, height: int = 32) -> np.ndarray:
    return np.full((height, width, 3), PREVIEW_COLOUR, np.uint8)


@pytest.fixture
def dng(tmp_path: Path) -> Path:
    path = tmp_path / "shot.dng"
    path.write_bytes(build_dng(_cfa(), orientation=6, preview=_preview()))
    return path


@pytest.fixture
def heic(tmp_path: Path) -> Path:
    """64x40 stored, left half red and right half blue, EXIF orientation 6 (pillow-heif writes it as irot)."""
    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:, :32], rgb[:, 32:] = RED, BLUE
    path = tmp_path / "phone.heic"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6, piexif.ImageIFD.Make: b"Phone"}})
    Image.fromarray(rgb).save(path, quality=95, exif=exif)
    return path


def _near(pixel, colour, tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour)) <= tolerance))


def test_the_test_dng_is_one_libraw_reads(dng: Path) -> None:
    with rawpy.imread(str(dng)) as raw:
        assert (raw.sizes.width, raw.sizes.height, raw.sizes.flip) == (96, 64, 6)
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]]  # R G / G B
        assert raw.extract_thumb().format == rawpy.ThumbFormat.JPEG


def test_heic_opens_turned_by_its_own_transform(heic: Path) -> None:
    """libheif applies the irot, and pillow-heif sets the EXIF orientation to 1: the pixels are
    what is displayed, and the stored-orientation rule holds (pixels + orientation = the view)."""
    doc = open_image(heic)
    assert doc.full_size == (40, 64) and doc.preview.shape == (64, 40, 3)
    assert doc.orientation == 1
    assert _near(doc.preview[5, 20], RED) and _near(doc.preview[58, 20], BLUE)  # the left half is on top
    loaded = load_image(heic)
    assert loaded.source_format == "HEIF" and loaded.rgb.shape == (64, 40, 3) and loaded.orientation == 1
    assert piexif.load(loaded.exif)["0th"][piexif.ImageIFD.Make] == b"Phone"  # its EXIF is carried


def test_heic_is_held_to_the_pixel_budget(heic: Path, monkeypatch) -> None:
    monkeypatch.setenv("HYPERTHUMB_MAX_PIXELS", "1000")
    with pytest.raises(ImageLoadError, match="over the limit"):
        open_image(heic)


def test_raw_opens_with_its_embedded_preview(dng: Path) -> None:
    doc = open_image(dng)
    assert doc.preview.shape == (32, 48, 3) and _near(doc.preview[16, 24], PREVIEW_COLOUR, 4)
    assert doc.full_size == (96, 64) and doc.orientation == 6  # LibRaw's flip 6 is EXIF orientation 6
    assert piexif.load(doc.exif)["0th"][piexif.ImageIFD.Orientation] == 6
    assert not doc.is_hyperthumbnail
    assert doc.notes == [
        "RAW file: showing the camera's embedded preview (48 x 32 of 96 x 64); export develops the RAW"
    ]


def test_raw_is_developed_for_encoding_in_stored_orientation(dng: Path) -> None:
    loaded = load_image(dng)
    with rawpy.imread(str(dng)) as raw:
        expected = raw.postprocess(use_camera_wb=True, output_bps=8, user_flip=0)
    assert loaded.rgb.shape == (64, 96, 3) and loaded.rgb.dtype == np.uint8
    assert np.array_equal(loaded.rgb, expected)  # LibRaw's development, not turned
    red, green, blue = loaded.rgb[8:-8, 8:-8].reshape(-1, 3).mean(0)
    assert red > green > blue  # the orange scene, not the preview's colour
    assert loaded.orientation == 6 and loaded.source_format == "RAW"
    assert loaded.notes == [DEVELOPED_NOTE] and "developed from RAW" in DEVELOPED_NOTE


def test_raw_without_a_preview_shows_a_half_size_development(tmp_path: Path) -> None:
    path = tmp_path / "bare.dng"
    path.write_bytes(build_dng(_cfa(), orientation=1))
    doc = open_image(path)
    assert doc.preview.shape == (32, 48, 3) and doc.full_size == (96, 64) and doc.orientation == 1
    assert "half-size development" in doc.notes[0]


def test_raw_sensor_is_held_to_the_pixel_budget(dng: Path, monkeypatch) -> None:
    monkeypatch.setenv("HYPERTHUMB_MAX_PIXELS", "5000")  # the 48x32 preview fits, the 96x64 sensor does not
    with pytest.raises(ImageLoadError, match="over the limit"):
        open_image(dng)
    with pytest.raises(ImageLoadError, match="over the limit"):
        load_image(dng)


def test_a_raw_name_libraw_does_not_know_is_left_to_pillow(tmp_path: Path) -> None:
    path = tmp_path / "renamed.nef"
    Image.fromarray(np.full((10, 12, 3), 77, np.uint8)).save(path, "PNG")
    loaded = load_image(path)
    assert loaded.source_format == "PNG" and loaded.rgb.shape == (10, 12, 3)


def test_strip_preview_of_a_raw_gives_the_photo_size(dng: Path) -> None:
    from app.viewer.codec_bridge import strip_preview

    strip = strip_preview(dng, 24)
    assert strip.full_size == (64, 96)  # displayed: the sensor's 96x64 turned by orientation 6
    assert strip.rgb.shape == (24, 16, 3) and _near(strip.rgb[12, 8], PREVIEW_COLOUR, 6)


def test_viewer_lists_heic_and_raw_files() -> None:
    from app.viewer.playlist import IMAGE_SUFFIXES

    assert {".heic", ".heif", ".avif", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".dng"} <= IMAGE_SUFFIXES


@pytest.fixture
def weights(tmp_path: Path) -> str:
    directory = tmp_path / "weights"
    make_weights(directory)
    return str(directory)


@pytest.mark.parametrize("kind", ["heic", "dng"])
def test_cli_encodes_heic_and_raw(tmp_path: Path, weights: str, capsys, kind: str) -> None:
    if kind == "heic":
        source = tmp_path / "photo.heic"
        Image.fromarray(photo_like(120, 80, seed=5)).save(source, quality=90)
        size, orientation = [120, 80], 1
    else:
        source = tmp_path / "photo.dng"
        source.write_bytes(build_dng(_cfa(120, 80), orientation=6, preview=_preview(60, 40)))
        size, orientation = [120, 80], 6
    thumb = tmp_path / "thumb.jpg"
    code = main(["--weights", weights, "encode", str(source), str(thumb)])
    _, err = capsys.readouterr()
    assert code == 0, err
    report = describe(str(thumb))
    assert report["hyperthumbnail"] and report["full_size"] == size and report["preview_size"] == [30, 20]
    assert report["orientation"] == orientation
    if kind == "dng":
        assert "developed from RAW" in err
