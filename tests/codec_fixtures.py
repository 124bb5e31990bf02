"""Helpers shared by codec tests: tiny models, weights folders, PSNR."""

from dataclasses import replace

import torch

from app.codec.engine.weights import save_weights
from app.codec.nets.decoder import DecoderConfig
from app.codec.nets.detail import SCALE_LEVELS, DetailConfig
from app.codec.nets.encoder import EncoderConfig
from app.codec.nets.model import HyperThumbnailModel, ModelConfig
from app.codec.nets.qpm import QPMConfig

SMALL_CONFIG = ModelConfig(
    encoder=EncoderConfig(channels=16, blocks=2),
    qpm=QPMConfig(hidden=32),
    decoder=DecoderConfig(channels=16, blocks=2, freq_channels=32, freq_blocks=2, freq_out=8),
)


# The same, with a small detail layer (v3's structure).
SMALL_DETAIL_CONFIG = ModelConfig(
    encoder=SMALL_CONFIG.encoder,
    qpm=SMALL_CONFIG.qpm,
    decoder=DecoderConfig(
        channels=16,
        blocks=2,
        freq_channels=32,
        freq_blocks=2,
        freq_out=8,
        detail_latent=8,
        detail_channels=16,
        detail_features=8,
    ),
    detail=DetailConfig(latent=8, analysis=16, prior=8),
)
# the same with a context prior (2 groups of 4 channels, each in two checkerboard passes)
SMALL_CONTEXT_CONFIG = replace(
    SMALL_DETAIL_CONFIG, detail=replace(SMALL_DETAIL_CONFIG.detail, context_groups=2, context_width=8)
)


def random_model(config: ModelConfig = SMALL_CONFIG, seed: int = 0) -> HyperThumbnailModel:
    """A model whose zero-initialised residual tails are randomised, so every path matters."""
    torch.manual_seed(seed)
    model = HyperThumbnailModel(config)
    layers = [model.encoder.tail, model.decoder.tail, model.qpm.head[-1]]
    if config.detail is not None:
        layers += [model.decoder.detail_tail, model.prior.layers[-1]]
    for layer in layers:
        torch.nn.init.normal_(layer.weight, std=0.02)
    if config.detail is not None:
        with torch.no_grad():  # scales spread over the whole ladder, so many tables are used
            c = config.detail.latent
            model.prior.layers[-1].weight[c:].normal_(std=10.0)
            model.prior.layers[-1].bias[c:] = torch.linspace(4.0, SCALE_LEVELS - 8.0, c)
            if config.detail.context_groups:  # corrections of a few scale steps, read from the symbols
                for step in model.context.steps:
                    step[-1].weight.normal_(std=1.0)
                    step[-1].bias.normal_(std=2.0)
    return model.eval()


def make_weights(directory, model_id: str = "test-untrained", seed: int = 0, config=SMALL_CONFIG, onnx: bool = False):
    """A weights folder with one tiny untrained model; ``onnx``: also its exported ONNX decoder graph."""
    info = save_weights(random_model(config, seed), directory, model_id, trained=False, training={"note": "test"})
    if onnx:
        from app.training.onnx_export import export_onnx

        export_onnx(directory, model_id, log=lambda text: None)
        from app.codec.engine.weights import find_weights

        info = find_weights(directory, model_id=model_id)
    return info


def make_weights_with_jpeg_sr(directory):
    """A tiny default model plus a tiny "jpeg-sr-baseline" decoder, as `hyperthumb eval` expects."""
    make_weights(directory)
    save_weights(
        random_model(SMALL_CONFIG, seed=1),
        directory,
        "jpeg-sr-test",
        trained=False,
        make_default=False,
        role="jpeg-sr-baseline",
    )
    return directory
