"""The torch JPEG model: transforms, colour, and agreement with real files Pillow writes."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app.codec.engine.selfcheck import psnr, simulation_vs_file, table_order_ok
from app.codec.files.writer import encode_jpeg
from app.codec.nets.color import rgb_to_ycbcr, ycbcr_to_rgb
from app.codec.nets.dct import block_dct, block_idct, dct_matrix, pad_to_multiple
from app.codec.nets.jpeg_sim import quantize
from app.codec.nets.tables import ZIGZAG, standard_tables
from app.synthetic import photo_like


def test_dct_is_orthonormal_and_inverts():
    d = dct_matrix(dtype=torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    x = torch.rand(2, 3, 24, 40, dtype=torch.float64) * 255
    assert torch.allclose(block_idct(block_dct(x)), x, atol=1e-9)


def test_dct_matches_jpeg_definition():
    # JPEG's DC is 8 x the block mean; a horizontal cosine lands in coefficient (0, 1).
    flat = torch.full((1, 1, 8, 8), 10.0)
    assert block_dct(flat)[0, 0, 0, 0, 0].item() == pytest.approx(80.0)
    n = torch.arange(8.0)
    wave = torch.cos((2 * n + 1) * np.pi / 16).expand(8, 8)[None, None]
    coeffs = block_dct(wave)[0, 0, :, 0, 0]
    assert coeffs.abs().argmax().item() == 1  # natural index 1 = (v=0, u=1)


def test_zigzag_is_a_permutation_in_scan_order():
    assert sorted(ZIGZAG.tolist()) == list(range(64))
    assert ZIGZAG[:6].tolist() == [0, 1, 8, 16, 9, 2]


def test_colour_round_trip_and_jfif_constants():
    rgb = torch.rand(1, 3, 8, 8) * 255
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-3)
    white = rgb_to_ycbcr(torch.full((3, 1, 1), 255.0)).flatten()
    assert white.tolist() == pytest.approx([255.0, 128.0, 128.0], abs=1e-3)
    red = rgb_to_ycbcr(torch.tensor([255.0, 0, 0]).view(3, 1, 1)).flatten()
    assert red.tolist() == pytest.approx([76.245, 84.972, 255.5], abs=1e-2)


def test_pad_to_multiple_replicates_edges():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    y = pad_to_multiple(x, 8)
    assert y.shape[-2:] == (8, 8)
    assert torch.equal(y[..., :3, :4], x) and torch.all(y[..., 7, 7] == x[..., 2, 3])


def test_rounding_surrogates():
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    ste = quantize(x, "ste")
    assert torch.equal(ste, torch.round(x))
    ste.sum().backward()
    assert torch.all(x.grad == 1)
    noisy = quantize(x.detach(), "noise")
    assert (noisy - x.detach()).abs().max() <= 0.5
    with pytest.raises(ValueError):
        quantize(x, "nearest")


@pytest.mark.parametrize("seed,quality", [(0, 50), (1, 75), (2, 90), (3, 30)])
def test_simulation_matches_real_file(seed, quality):
    """Pillow's encode+decode of a 4:4:4 JPEG and the torch model agree to >= 45 dB, and the
    decoder's coefficient recovery from the file's YCbCr samples agrees with the model."""
    image = photo_like(200, 136, seed=seed)
    result = simulation_vs_file(image, quality)
    assert result["psnr_db"] >= 45.0
    assert result["coefficient_agreement"] >= 0.99
    luma, chroma = standard_tables(quality)
    real = np.asarray(Image.open(io.BytesIO(encode_jpeg(image, luma, chroma))).convert("RGB"))
    assert psnr(real, image) < result["psnr_db"] - 5  # it compares two decodes, not input with itself


def test_pillow_writes_natural_order_tables_zigzag():
    assert table_order_ok()
