"""``hyperthumb`` end to end on small photos, and every bad input giving a one-line error."""

import io
import json

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image

from app.cli import describe, main
from app.codec.engine.selfcheck import psnr
from app.synthetic import photo_like


@pytest.fixture
def weights(tmp_path):
    directory = tmp_path / "weights"
    make_weights(directory)
    return str(directory)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"TestCam", piexif.ImageIFD.Orientation: 1}})
    Image.fromarray(photo_like(301, 203, seed=2, detail=0.3)).save(path, quality=97, exif=exif)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_info_decode_round_trip(tmp_path, weights, photo, capsys):
    thumb, out = tmp_path / "thumb.jpg", tmp_path / "full.png"
    code, stdout, err = run(capsys, "--weights", weights, "encode", photo, thumb, "--rate", "HIGH")
    assert code == 0, err
    assert "301x203 -> 76x51 thumbnail" in stdout
    assert "untrained" in err  # never passed off as trained

    report = describe(str(thumb))
    assert report["hyperthumbnail"] and report["full_size"] == [301, 203] and report["preview_size"] == [76, 51]
    assert report["model_id"] == "test-untrained" and len(report["luma_table"]) == 64
    assert report["bits_per_pixel"] == pytest.approx(thumb.stat().st_size * 8 / (301 * 203))
    code, stdout, _ = run(capsys, "info", thumb, "--json")
    assert code == 0 and json.loads(stdout)["model_id"] == "test-untrained"
    code, stdout, _ = run(capsys, "info", thumb)
    assert "HyperThumbnail v2" in stdout and "301x203" in stdout

    code, stdout, err = run(capsys, "--weights", weights, "decode", thumb, out)
    assert code == 0, err
    decoded = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert decoded.shape == original.shape
    assert psnr(decoded, original) > 22.0  # even a random-tail model gives a faithful base image

    code, _, err = run(capsys, "--weights", weights, "decode", thumb, tmp_path / "crop.png", "--region", "10,20,50,40")
    assert code == 0, err
    crop = np.asarray(Image.open(tmp_path / "crop.png").convert("RGB"))
    assert crop.shape == (40, 50, 3)
    assert np.abs(crop.astype(int) - decoded[20:60, 10:60]).max() <= 1


def _png_zlib_level(path) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 fastest (level 0-1), 1 fast (2-5), 2 default (6), 3 best."""
    data = path.read_bytes()
    at = data.index(b"IDAT") + 4
    return data[at + 1] >> 6


def test_decoded_photos_are_written_fast_as_png_and_finely_as_jpeg(tmp_path, weights, photo, capsys):
    """Pillow's defaults are zlib level 6 (most of a big decode's time went to it) and JPEG
    quality 75 (rounding away what the decoder rebuilt): the decode writes level 3 and quality 95."""
    assert run(capsys, "--weights", weights, "encode", photo, tmp_path / "t.jpg")[0] == 0
    assert run(capsys, "--weights", weights, "decode", tmp_path / "t.jpg", tmp_path / "o.png")[0] == 0
    assert _png_zlib_level(tmp_path / "o.png") == 1
    png = np.asarray(Image.open(tmp_path / "o.png").convert("RGB")).astype(int)
    assert run(capsys, "--weights", weights, "decode", tmp_path / "t.jpg", tmp_path / "o.jpg")[0] == 0
    with Image.open(tmp_path / "o.jpg") as jpeg:
        luma_table = jpeg.quantization[0]
        pixels = np.asarray(jpeg.convert("RGB")).astype(int)
    assert max(luma_table) <= 12  # quality 95's table (quality 75's reaches 61)

    def resaved(quality: int) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(png.astype(np.uint8)).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(buffer).convert("RGB")).astype(int)

    assert np.array_equal(pixels, resaved(95))  # the same pixels as the PNG, written at quality 95
    assert np.abs(pixels - png).mean() < np.abs(resaved(75) - png).mean()


def test_orientation_is_applied_to_decoded_output(tmp_path, weights, capsys):
    src = tmp_path / "rotated.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(photo_like(120, 80, seed=3)).save(src, quality=95, exif=exif)
    assert run(capsys, "--weights", weights, "encode", src, tmp_path / "t.jpg")[0] == 0
    assert run(capsys, "--weights", weights, "decode", tmp_path / "t.jpg", tmp_path / "o.png")[0] == 0
    assert Image.open(tmp_path / "o.png").size == (80, 120)  # turned for display


@pytest.mark.parametrize("mode", ["RGBA", "L", "CMYK", "P", "I;16"])
def test_any_pillow_mode_is_accepted_and_noted(tmp_path, weights, capsys, mode):
    rgb = Image.fromarray(photo_like(64, 48, seed=4))
    image = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    src = tmp_path / ("src.tif" if mode in ("CMYK", "I;16") else "src.png")
    image.save(src)
    code, _, err = run(capsys, "--weights", weights, "encode", src, tmp_path / "t.jpg")
    assert code == 0, err
    assert "note:" in err


def test_bad_inputs_give_one_line_errors(tmp_path, weights, photo, capsys):
    thumb = tmp_path / "thumb.jpg"
    assert run(capsys, "--weights", weights, "encode", photo, thumb)[0] == 0
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    cases = [
        (("encode", tmp_path / "missing.png", tmp_path / "a.jpg"), "no such file"),
        (("encode", truncated, tmp_path / "b.jpg"), "truncated"),
        (("encode", text, tmp_path / "c.jpg"), "not an image"),
        (("decode", photo, tmp_path / "d.png"), "not a HyperThumbnail"),
        (("decode", truncated, tmp_path / "e.png"), "truncated"),
        (("encode", photo, thumb), "exists"),
        (("decode", thumb, tmp_path / "f.xyz"), "unknown output"),
        (("encode", photo, tmp_path / "g.jpg", "--rate", "3"), "between 0 and 1"),
        (("encode", photo, tmp_path / "h.jpg", "--device", "cuda:7"), "CUDA"),
    ]
    before = thumb.read_bytes()
    for argv, message in cases:
        code, _, err = run(capsys, "--weights", weights, *argv)
        assert code == 1, (argv, err)
        assert message in err and "Traceback" not in err and err.count("\n") == 1, (argv, err)
    assert thumb.read_bytes() == before  # the refused overwrite left the file alone
    assert not (tmp_path / "a.jpg").exists() and not list(tmp_path.glob(".*.part"))
    assert run(capsys, "--weights", weights, "encode", photo, thumb, "--force", "--rate", "LOW")[0] == 0


def test_wrong_or_missing_weights(tmp_path, weights, photo, capsys):
    thumb = tmp_path / "thumb.jpg"
    assert run(capsys, "--weights", weights, "encode", photo, thumb)[0] == 0
    other = tmp_path / "other"
    make_weights(other, model_id="other", seed=1)
    code, _, err = run(capsys, "--weights", other, "decode", thumb, tmp_path / "x.png")
    assert code == 1 and "not installed" in err
    code, _, err = run(capsys, "--weights", tmp_path / "empty", "encode", photo, tmp_path / "y.jpg")
    assert code == 1 and "No trained weights" in err


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "decode")[0] == 2
    assert run(capsys, "decode", "a.jpg", "b.png", "--region", "1,2,3")[0] == 2


def test_selfcheck_reports_figures_within_limits(capsys):
    code, stdout, _ = run(capsys, "selfcheck", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["ok"]
    assert report["simulation_psnr_db_min"] >= 45 and report["rate_correlation"] >= 0.95
    assert report["tiled_decode_max_diff"] <= 1 and report["table_order_ok"]


def _tagged_photo(path):
    """A camera JPEG: EXIF (orientation 6, GPS, a MakerNote), XMP (rating, location), IPTC (caption, city)."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"TestCam", piexif.ImageIFD.Orientation: 6},
            "Exif": {piexif.ExifIFD.MakerNote: b"MKNT" * 8, piexif.ExifIFD.PixelXDimension: 120},
            "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (30, 1), (0, 1))},
        }
    )
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        b'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmp:Rating="4" photoshop:City="Berlin"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    iim = b"\x1c\x02\x78\x00\x05Boats\x1c\x02\x5a\x00\x06Berlin"
    app13 = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim
    extra = b"\xff\xed" + (len(app13) + 2).to_bytes(2, "big") + app13
    Image.fromarray(photo_like(120, 80, seed=5)).save(path, quality=95, exif=exif, xmp=packet, extra=extra)
    return app13


def _xmp_of(im) -> bytes:
    return im.info.get("xmp") or im.info.get("XML:com.adobe.xmp", "").encode()


def test_metadata_survives_encode_and_decode(tmp_path, weights, capsys):
    src, thumb = tmp_path / "tagged.jpg", tmp_path / "t.jpg"
    app13 = _tagged_photo(src)
    assert run(capsys, "--weights", weights, "encode", src, thumb)[0] == 0
    with Image.open(thumb) as im:
        assert [d for kind, d in im.applist if kind == "APP13"] == [app13]  # IPTC byte for byte
        assert b'xmp:Rating="4"' in _xmp_of(im) and im.getexif()[0x0112] == 6
    for suffix in (".png", ".jpg", ".tif", ".webp"):
        out = tmp_path / f"full{suffix}"
        code, _, err = run(capsys, "--weights", weights, "decode", thumb, out)
        assert code == 0, err
        with Image.open(out) as im:
            assert im.size == (80, 120)  # turned upright, so the EXIF says 1
            exif = im.getexif()
            assert exif[0x010F] == "TestCam" and exif.get(0x0112, 1) == 1 and 0x8825 in exif
            if suffix != ".tif":
                assert exif.get_ifd(0x8769)[0xA002] == 80 and exif.get_ifd(0x8769)[0x927C] == b"MKNT" * 8
            packet = _xmp_of(im)
            assert b'xmp:Rating="4"' in packet and b"hyperthumb" not in packet.lower()  # not a HyperThumbnail
            if suffix == ".jpg":
                assert [d for kind, d in im.applist if kind == "APP13"] == [app13]
            if suffix == ".tif":
                assert bytes(im.tag_v2[33723]) == app13[26:]
        assert describe(str(out))["hyperthumbnail"] is False


def test_strip_gps_removes_the_location_everywhere(tmp_path, weights, capsys):
    src, thumb = tmp_path / "tagged.jpg", tmp_path / "t.jpg"
    _tagged_photo(src)
    assert run(capsys, "--weights", weights, "encode", src, thumb, "--strip-gps")[0] == 0
    with Image.open(thumb) as im:
        packet, app13 = _xmp_of(im), b"".join(d for kind, d in im.applist if kind == "APP13")
        assert 0x8825 not in im.getexif() and im.getexif()[0x010F] == "TestCam"
    assert b'xmp:Rating="4"' in packet and b"Berlin" not in packet  # the rating kept, the city gone
    assert b"Boats" in app13 and b"Berlin" not in app13
    latitude = b"\x00\x00\x00\x34\x00\x00\x00\x01\x00\x00\x00\x1e"  # 52/1, 30/... as piexif wrote them
    assert b"Berlin" not in thumb.read_bytes() and latitude in src.read_bytes() and latitude not in thumb.read_bytes()
