"""Tiled encode and decode equal untiled results, on odd sizes and sub-regions."""

import numpy as np
import pytest
import torch
from codec_fixtures import random_model

from app.codec.engine.inference import Reconstructor, encode_thumbnail
from app.codec.files.tiling import Box, Cancelled, fixed_shape_contexts, tiles_in
from app.codec.nets.color import rgb_to_ycbcr
from app.synthetic import photo_like


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def thumbnail_ycbcr(thumb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(thumb).permute(2, 0, 1).float()
    return rgb_to_ycbcr(x).round().clamp(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def photo():
    return photo_like(1001, 667, seed=5)


def test_tiles_cover_area_once():
    area = Box(8, 203, 16, 301)
    covered = np.zeros((203, 301), int)
    for t in tiles_in(area, 64, 8):
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.y0 % 8 == 0 and t.x0 % 8 == 0
    assert covered[8:, 16:].min() == 1 and covered.sum() == 195 * 285


@pytest.mark.parametrize("seed", range(60))
def test_fixed_shape_contexts_cover_once_with_margins_and_one_shape(seed):
    """Every decode's tiles: the area exactly once, each tile inside its context with the full
    margin except where the context meets the image's edge, all contexts of one shape (what lets
    the allocator reuse the last tile's buffers), no more tiles and no more work than plain tiles."""
    rng = np.random.default_rng(seed)
    height, width = 8 * rng.integers(2, 200 if seed % 2 else 12, size=2)  # odd seeds: tiny images
    y0, y1 = sorted(8 * rng.choice(height // 8 + 1, size=2, replace=False))
    x0, x1 = sorted(8 * rng.choice(width // 8 + 1, size=2, replace=False))
    area, tile, margin = Box(y0, y1, x0, x1), int(rng.choice([8, 16, 64, 256, 512])), int(rng.choice([8, 16, 40, 64]))
    pairs = list(fixed_shape_contexts(area, tile, 8, margin, height, width))
    covered = np.zeros((height, width), int)
    for box, ctx in pairs:
        assert box.height > 0 and box.width > 0
        covered[box.y0 : box.y1, box.x0 : box.x1] += 1
        assert all(v % 8 == 0 for v in (*vars(box).values(), *vars(ctx).values()))
        assert 0 <= ctx.y0 and ctx.y1 <= height and 0 <= ctx.x0 and ctx.x1 <= width
        assert box.y0 - ctx.y0 >= min(margin, box.y0) and ctx.y1 - box.y1 >= min(margin, height - box.y1)
        assert box.x0 - ctx.x0 >= min(margin, box.x0) and ctx.x1 - box.x1 >= min(margin, width - box.x1)
    assert covered[y0:y1, x0:x1].min() == 1 and covered.sum() == area.height * area.width
    plain = list(tiles_in(area, tile, 8))
    assert len(pairs) <= len(plain)
    assert len({(ctx.height, ctx.width) for _, ctx in pairs}) == 1
    plain_work = sum(b.expanded(margin, height, width).height * b.expanded(margin, height, width).width for b in plain)
    rows = len({b.y0 for b in plain})
    cols = len({b.x0 for b in plain})
    work = sum(ctx.height * ctx.width for _, ctx in pairs)
    if 2 * margin <= tile:  # the product's case (margin 40, tiles of 256 or 512): no more work than plain tiles
        assert work <= plain_work + 16 * (rows * width + cols * height)  # a rounding row/column per tile at most


def test_tiled_encode_equals_untiled(model, photo):
    whole, luma, chroma = encode_thumbnail(model, photo, 0.5, tile=4096)
    tiled, luma_t, chroma_t = encode_thumbnail(model, photo, 0.5, tile=40)
    assert whole.shape == (167, 251, 3)  # ceil(667/4) x ceil(1001/4)
    assert max_diff(whole, tiled) <= 1
    assert np.array_equal(luma, luma_t) and np.array_equal(chroma, chroma_t)


def test_tiled_decode_equals_untiled_and_regions_match(model, photo):
    thumb, luma, chroma = encode_thumbnail(model, photo, 0.5)
    rec = Reconstructor(model, thumbnail_ycbcr(thumb), luma, chroma, (1001, 667))
    whole = rec.decode(tile=4096)
    assert whole.shape == (667, 1001, 3)
    for tile in (16, 40, 96):
        assert max_diff(whole, rec.decode(tile=tile)) <= 1
    region = Box(37, 250, 101, 333)
    assert max_diff(rec.decode(region, tile=24), whole[37:250, 101:333]) <= 1
    edge = Box(600, 667, 950, 1001)  # the padded bottom-right corner
    assert max_diff(rec.decode(edge, tile=16), whole[600:, 950:]) <= 1


def test_too_small_margin_would_show_seams(model, photo):
    """The equality above is not vacuous: without enough context, tiles disagree."""
    thumb, luma, chroma = encode_thumbnail(model, photo, 0.5)
    rec = Reconstructor(model, thumbnail_ycbcr(thumb), luma, chroma, (1001, 667))
    whole = rec.decode(tile=4096)
    original = type(model.config.decoder).margin
    try:
        type(model.config.decoder).margin = lambda self: 0
        assert max_diff(whole, rec.decode(tile=32)) > 4
    finally:
        type(model.config.decoder).margin = original


def test_decode_can_be_cancelled_and_reports_progress(model, photo):
    thumb, luma, chroma = encode_thumbnail(model, photo, 0.5)
    rec = Reconstructor(model, thumbnail_ycbcr(thumb), luma, chroma, (1001, 667))
    seen = []
    rec.decode(tile=64, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == len(seen) > 1
    with pytest.raises(Cancelled):
        rec.decode(tile=64, cancelled=lambda: True)
