"""Weights load only when their hash and architecture check out, with clear messages."""

import json

import pytest
import torch
from codec_fixtures import SMALL_CONFIG, make_weights, random_model

from app.codec.engine.weights import find_weights, installed_weights_status, load_model
from app.codec.errors import WeightsError


def test_round_trip_restores_every_tensor(tmp_path):
    info = make_weights(tmp_path)
    assert info.model_id == "test-untrained" and not info.trained and len(info.sha256) == 64
    loaded = load_model(find_weights(tmp_path))
    reference = random_model()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert find_weights(tmp_path, sha256=info.sha256).model_id == info.model_id


def test_hash_mismatch_is_refused(tmp_path):
    info = make_weights(tmp_path)
    data = bytearray(info.path.read_bytes())
    data[-10] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_model(find_weights(tmp_path))


def test_architecture_mismatch_is_refused(tmp_path):
    make_weights(tmp_path)
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["test-untrained"]["architecture"]["decoder"]["channels"] = 24
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="architecture"):
        load_model(find_weights(tmp_path))


def test_unknown_hash_and_missing_manifest(tmp_path):
    with pytest.raises(WeightsError, match="No trained weights"):
        find_weights(tmp_path)
    make_weights(tmp_path)
    with pytest.raises(WeightsError, match="not installed"):
        find_weights(tmp_path, sha256="0" * 64)


def test_status_says_plainly_when_weights_are_untrained_or_missing(tmp_path):
    assert "No trained weights" in installed_weights_status(tmp_path)
    make_weights(tmp_path)
    assert "untrained" in installed_weights_status(tmp_path)
    assert SMALL_CONFIG.decoder.margin() % 8 == 0


def test_files_made_with_the_older_installed_weights_decode_with_them(tmp_path):
    """The shipped folder: a file made with v1 (the old default) decodes with v1, found by the
    sha256 in its marker, next to one made with today's default; both reconstruct the photo."""
    from pathlib import Path

    import numpy as np

    from app.codec.api import Codec
    from app.codec.files.imageio import LoadedImage
    from app.synthetic import photo_like

    shipped = Path(__file__).resolve().parents[1] / "model_weights"
    codec = Codec(shipped, "cpu")
    rgb = photo_like(256, 192, seed=5)
    photo = LoadedImage(rgb=rgb, exif=None, icc_profile=None, orientation=1, source_format="PNG")
    old = find_weights(shipped, model_id="hyperthumb-x4-v1")
    for info in (old, codec.weights()):
        path = tmp_path / f"{info.model_id}.jpg"
        codec.encode_photo(photo, path, effort="fast", weights=info)
        reconstructor = codec.reconstructor(path)
        assert reconstructor.model is codec.model(info)  # the weights the file's marker names
        error = reconstructor.decode().astype(np.float64) - rgb
        assert 10 * np.log10(255**2 / np.mean(error**2)) > 24, info.model_id
    assert codec.weights().model_id != old.model_id
