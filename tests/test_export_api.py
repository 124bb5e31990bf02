"""The codec side of exporting: keep_exif, cancel up to the write, load_photo, and size estimates."""

from __future__ import annotations

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image

from app.codec.api import RATE_PRESETS, Codec
from app.codec.errors import ImageLoadError
from app.codec.files.estimate import SAMPLE_STRIP
from app.codec.files.imageio import load_image
from app.codec.files.reader import read_marker, read_thumbnail
from app.codec.files.tiling import Cancelled
from app.synthetic import photo_like

GPS = {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (0, 1))}


@pytest.fixture(scope="module")
def codec(tmp_path_factory) -> Codec:
    directory = tmp_path_factory.mktemp("weights")
    make_weights(directory)
    return Codec(weights_dir=directory, device="cpu")


@pytest.fixture
def camera_photo(tmp_path):
    """A turned (orientation 6) JPEG with a camera make and a GPS position."""
    path = tmp_path / "camera.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"TestCam", piexif.ImageIFD.Orientation: 6}, "GPS": GPS})
    Image.fromarray(photo_like(160, 96, seed=5)).save(path, quality=95, exif=exif)
    return path


def exif_of(path) -> dict:
    return piexif.load(Image.open(path).info["exif"])


def test_keep_exif_default_keeps_everything(codec, camera_photo, tmp_path):
    codec.encode_file(camera_photo, tmp_path / "all.jpg")
    tags = exif_of(tmp_path / "all.jpg")
    assert tags["0th"][piexif.ImageIFD.Make] == b"TestCam" and tags["GPS"]
    assert tags["0th"][piexif.ImageIFD.Orientation] == 6


def test_strip_gps_drops_only_the_location(codec, camera_photo, tmp_path):
    codec.encode_file(camera_photo, tmp_path / "nogps.jpg", strip_gps=True)
    tags = exif_of(tmp_path / "nogps.jpg")
    assert not tags["GPS"] and tags["0th"][piexif.ImageIFD.Make] == b"TestCam"


def test_keep_exif_false_keeps_only_orientation_and_the_marker(codec, camera_photo, tmp_path):
    out = tmp_path / "bare.jpg"
    result = codec.encode_file(camera_photo, out, keep_exif=False)
    tags = exif_of(out)
    assert piexif.ImageIFD.Make not in tags["0th"] and not tags["GPS"]
    assert tags["0th"][piexif.ImageIFD.Orientation] == 6  # without it the photo would show turned
    marker = read_marker(out)
    assert marker is not None and (marker.width, marker.height) == result.full_size == (160, 96)
    kept = codec.encode_file(camera_photo, tmp_path / "kept.jpg")
    assert result.file_size == out.stat().st_size < kept.file_size


def test_a_cancel_after_the_last_tile_still_leaves_no_file(codec, camera_photo, tmp_path):
    """The encoder's own checks come before each tile; the one before the write catches a cancel
    that arrives while the last tile runs."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    state = {"done": False}

    def progress(done, total):
        state["done"] = done == total

    with pytest.raises(Cancelled):
        codec.encode_file(camera_photo, out_dir / "x.jpg", progress=progress, cancelled=lambda: state["done"])
    assert state["done"] and list(out_dir.iterdir()) == []


def test_load_photo_reconstructs_a_hyperthumbnail(codec, camera_photo, tmp_path):
    hyper = codec.encode_file(camera_photo, tmp_path / "h.jpg").path
    photo = codec.load_photo(hyper)
    assert photo.rgb.shape == (96, 160, 3) and photo.orientation == 6
    assert photo.source_format == "HyperThumbnail" and photo.notes
    expected = codec.reconstructor(read_thumbnail(hyper)).decode()
    assert np.array_equal(photo.rgb, expected)
    plain = codec.load_photo(camera_photo)
    assert np.array_equal(plain.rgb, load_image(camera_photo).rgb)
    with pytest.raises(ImageLoadError):
        codec.load_photo(tmp_path / "missing.jpg")


def test_a_small_photo_is_estimated_exactly(codec, camera_photo, tmp_path):
    photo = load_image(camera_photo)
    for rate, keep, strip in ((0.0, True, False), (1.0, False, False), (0.3, True, True)):
        estimate = codec.estimate_size(photo, rate, keep_exif=keep, strip_gps=strip)
        real = codec.encode_photo(photo, tmp_path / "e.jpg", rate=rate, keep_exif=keep, strip_gps=strip, force=True)
        assert estimate.exact and estimate.bytes == real.file_size


def test_a_sampled_estimate_is_close_and_grows_with_the_rate(codec, tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(photo_like(640, 448, seed=7)).save(path)
    photo = load_image(path)
    estimates = []
    for rate in RATE_PRESETS.values():
        estimate = codec.estimate_size(photo, rate, sample_pixels=4 * SAMPLE_STRIP[0] * SAMPLE_STRIP[1])
        real = codec.encode_photo(photo, tmp_path / "r.jpg", rate=rate, force=True).file_size
        assert not estimate.exact and 0 < estimate.sampled < 0.5
        assert 0.75 < estimate.bytes / real < 1.33, (rate, estimate, real)
        estimates.append(estimate.bytes)
    assert estimates == sorted(estimates) and estimates[0] < estimates[-1]


def test_threads_asking_for_the_model_together_load_it_once(tmp_path, monkeypatch):
    import threading

    from codec_fixtures import make_weights

    from app.codec import api
    from app.codec.api import Codec

    make_weights(tmp_path / "w")
    codec = Codec(weights_dir=tmp_path / "w", device="cpu")
    loads, real = [], api.load_model

    def slow_load(*args, **kwargs):
        loads.append(1)
        threading.Event().wait(0.05)  # long enough for the other threads to arrive
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "load_model", slow_load)
    info = codec.weights()
    models = []
    threads = [threading.Thread(target=lambda: models.append(codec.model(info))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and all(m is models[0] for m in models)


def test_source_xmp_and_density_survive_an_encode_and_a_re_encode(codec, tmp_path):
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/></rdf:RDF></x:xmpmeta>'
    )
    source = tmp_path / "rated.jpg"
    Image.fromarray(photo_like(160, 96, seed=5)).save(source, dpi=(300, 300), xmp=xmp)
    first = codec.encode_file(source, tmp_path / "ht.jpg").path
    again = codec.encode_photo(codec.load_photo(first), tmp_path / "again.jpg").path
    for path in (first, again):
        with Image.open(path) as im:
            assert b'xmp:Rating="4"' in im.info["xmp"]
            assert im.info["xmp"].count(b"https://hyperthumbnail.org/ns/1.0/") == 1
        assert read_marker(path).width == 160
    with Image.open(first) as im:
        assert im.info.get("dpi") == (300, 300)
