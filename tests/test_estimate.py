"""The export dialog's size estimate (issue 12: within 10% on photos of every size): sampled
strips in context, coded as the file will be, against the file really written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.codec.api import Codec
from app.codec.files.estimate import Mosaic, sample_strips, scans_length
from app.codec.files.imageio import LoadedImage
from app.codec.files.writer import encode_jpeg, optimize_entropy_coding
from app.synthetic import photo_like


def loaded(rgb: np.ndarray) -> LoadedImage:
    return LoadedImage(rgb=rgb, exif=None, icc_profile=None, orientation=1, source_format="PNG", notes=[])


def smooth_photo(width: int, height: int) -> np.ndarray:
    """A photo upscaled 8x from a small one: what defeated the old estimate (35-74% over)."""
    small = photo_like(width // 8, height // 8, seed=3)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))


@pytest.fixture(scope="module")
def codec(weights) -> Codec:
    return Codec(weights_dir=weights)


@pytest.mark.parametrize("kind", ["smooth", "detailed"])
def test_a_sampled_estimate_is_within_ten_percent(codec, tmp_path, kind):
    width, height = 2048, 1536
    rgb = smooth_photo(width, height) if kind == "smooth" else photo_like(width, height, seed=5)
    photo = loaded(rgb)
    for rate in (0.0, 1.0):
        estimate = codec.estimate_size(photo, rate, sample_pixels=width * height // 8, effort="fast")
        real = codec.encode_photo(photo, tmp_path / "r.jpg", rate=rate, force=True, effort="fast").file_size
        assert not estimate.exact and 0.1 < estimate.sampled < 0.15
        assert abs(estimate.bytes / real - 1) < 0.10, (kind, rate, estimate, real)


def test_strips_carry_their_context_and_the_crop_removes_it():
    rgb = np.random.default_rng(0).integers(0, 255, (1000, 1600, 3), dtype=np.uint8)
    mosaic = sample_strips(rgb, pixels=8 * 128 * 512, strip=(128, 512), margin=64)
    assert isinstance(mosaic, Mosaic) and mosaic.rows * mosaic.cols == 8
    assert mosaic.pixels.shape == (mosaic.rows * 256, mosaic.cols * 640, 3)
    thumb = mosaic.pixels[::4, ::4]  # stands in for the encoder's x4 thumbnail
    cropped = mosaic.crop(thumb, 4)
    assert cropped.shape == (mosaic.rows * 32, mosaic.cols * 128, 3)
    assert np.array_equal(cropped[:32, :128], mosaic.pixels[64 : 64 + 128 : 4, 64 : 64 + 512 : 4])
    assert sample_strips(rgb[:300, :400], pixels=1 << 20) is None  # small: encoded whole


def test_scans_length_counts_every_scan_of_a_progressive_file():
    thumb = photo_like(256, 192, seed=1)
    flat = np.full(64, 4)
    baseline = encode_jpeg(thumb, flat, flat)
    progressive = optimize_entropy_coding(baseline)
    assert progressive.count(b"\xff\xda") > 1  # several scans
    assert 0.8 * len(progressive) < scans_length(progressive) < len(progressive)
    assert scans_length(baseline) < len(baseline)
