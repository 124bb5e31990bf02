"""``hyperthumb`` end to end on small photos, and every bad input giving a one-line error."""

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
