"""Train a detail model's context prior (``nets.detail_context``) on its frozen symbols.

The context changes only the scales, never the decoded latent, so nothing else of the model
needs to move: the encoder, the analysis, the gains, the base prior and the decoder stay the
installed model's, the symbols a file codes are the same, and only their bits change. That
makes the training cheap: the symbols and the base prior's features of a few thousand training
patches are computed once (the frozen model, no graph), then only the small context networks
train on them, minimising the bits of the rounded symbols.

    python -m app.training context --base hyperthumb-x4-v5 --id hyperthumb-x4-v5c --no-default

The result is a new model (the base's weights plus the context's) in the weights folder, with a
manifest entry that says so: files made with it name its sha256, and files of the base still
decode with the base.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from app.codec.engine.runtime import cpu_has_native_bf16
from app.codec.engine.weights import find_weights, load_model, save_weights
from app.codec.nets.detail import RATE_LEVELS, SCALE_LEVELS, latent_bits
from app.codec.nets.model import HyperThumbnailModel
from app.training import data
from app.training.train import CropSampler, frozen_encoder_forward, validation_crops

VALIDATION_RATES = (0.55, 0.7, 0.85, 1.0)


@torch.no_grad()
def collect_symbols(
    model: HyperThumbnailModel, photos: torch.Tensor, rates: torch.Tensor, autocast: torch.dtype | None = None
) -> dict:
    """Per crop at its rate (quantised as files store it): the base prior's hidden features
    [B, P, h, w] and scale position [B, C, h, w], and the rounded symbols [B, C, h, w] that the
    encoder codes (``round(gained latent - mean)``; the integer prior's mean is this one's within
    1/16 of a unit)."""
    out = {"hidden": [], "position": [], "symbols": []}
    for hr, rate in zip(photos.split(4), rates.split(4)):
        rate = torch.round(rate * RATE_LEVELS) / RATE_LEVELS
        base, sim = frozen_encoder_forward(model, hr, model.config.thumbnail_rate(rate), autocast)
        base = torch.round(base.clamp(0, 1) * 255) / 255  # what the encoder sees: the decoded base
        y = model._networks(autocast, model.analysis, hr, base, sim.decoded).float() * model.gains.gain(rate)
        hidden = model.prior.hidden(sim.decoded_ycbcr, rate)
        mean, position = model.prior.head(hidden)
        out["hidden"].append(hidden.half())  # 2x less memory; the network sees them as float32
        out["position"].append(position)
        out["symbols"].append(torch.round(y - mean).to(torch.int16))
    return {k: torch.cat(v) for k, v in out.items()}


def context_bits(context, batch: dict, rounded: bool) -> torch.Tensor:
    """Total bits of a batch's symbols under base position + context correction (``rounded``:
    the scale indexes a file uses, else the continuous position training descends on)."""
    symbols = batch["symbols"].float()
    position = batch["position"] + context(batch["hidden"].float(), symbols)
    if rounded:
        position = torch.round(position).clamp(0, SCALE_LEVELS - 1)
    return latent_bits(symbols, torch.zeros(()), position).sum()


def base_bits(batch: dict) -> torch.Tensor:
    position = torch.round(batch["position"]).clamp(0, SCALE_LEVELS - 1)
    return latent_bits(batch["symbols"].float(), torch.zeros(()), position).sum()


def _slice(d: dict, index) -> dict:
    return {k: v[index] for k, v in d.items()}


def train_context(
    base_id: str | None,
    *,
    weights_dir=None,
    cache=None,
    groups: int = 4,
    width: int = 32,
    neighbours: str = "group",
    patches: int = 2048,
    patch: int = 256,
    steps: int = 3000,
    batch: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    echo=print,
) -> tuple[HyperThumbnailModel, dict]:
    """The base model with a trained context prior, and what was measured on the way."""
    torch.manual_seed(seed)
    base_info = find_weights(weights_dir, model_id=base_id)
    base = load_model(base_info)
    if base.config.detail is None:
        raise ValueError(f"{base_info.model_id} has no detail layer")
    detail = replace(base.config.detail, context_groups=groups, context_width=width, context_neighbours=neighbours)
    config = replace(base.config, detail=detail)
    model = HyperThumbnailModel(config)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("context.") for k in missing):
        raise ValueError("the base model's weights do not fit the context model")
    model.eval()
    autocast = torch.bfloat16 if cpu_has_native_bf16() else None  # the frozen networks only; the prior runs in float32
    cache = data.cache_dir(cache)
    crops, weights = data.load_pack(cache / "pack")
    sampler = CropSampler(crops, weights, patch, seed)
    started = time.time()
    full = model.config.detail.thumbnail_full_at
    parts = []
    for i in range(0, patches, 64):
        n = min(64, patches - i)
        rates = full + 0.005 + (1 - full - 0.005) * torch.rand(n)  # rates where files carry the layer
        parts.append(collect_symbols(model, sampler.batch(n), rates, autocast))
        echo(f"symbols: {i + n}/{patches} patches ({time.time() - started:.0f} s)")
    train = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    val_photos = validation_crops(cache / "validation", size=512)
    held = {
        r: collect_symbols(model, val_photos, torch.full((len(val_photos),), r), autocast) for r in VALIDATION_RATES
    }
    collect_s = time.time() - started

    context = model.context
    context.train()
    optimizer = torch.optim.Adam(context.parameters(), lr=lr)
    elements = train["symbols"][0].numel()
    generator = torch.Generator().manual_seed(seed)
    started = time.time()
    for step in range(1, steps + 1):
        for g in optimizer.param_groups:  # cosine from lr to lr/50
            g["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        picks = torch.randint(0, len(train["symbols"]), (batch,), generator=generator)
        loss = context_bits(context, _slice(train, picks), rounded=False) / (batch * elements)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(context.parameters(), 1.0)
        optimizer.step()
        if step % 250 == 0 or step == steps:
            echo(f"step {step}: {loss.item():.4f} bits per symbol ({time.time() - started:.0f} s)")
    context.eval()
    results = {"validation_bits_saved": {}}
    with torch.no_grad():
        sample = _slice(train, slice(0, 256))  # in-sample: how much of the saving is fitting
        saved = 1 - float(context_bits(context, sample, rounded=True)) / float(base_bits(sample))
        results["training_bits_saved"] = round(100 * saved, 2)
        echo(f"training patches (in-sample): {100 * saved:+.1f}%")
        for r, s in held.items():
            before, after = float(base_bits(s)), float(context_bits(context, s, rounded=True))
            results["validation_bits_saved"][str(r)] = round(100 * (1 - after / before), 2)
            echo(
                f"validation rate {r}: {before / 8 / 1024:.0f} -> {after / 8 / 1024:.0f} KiB ({100 * (1 - after / before):+.1f}%)"
            )
    results.update(
        base=base_info.model_id,
        base_sha256=base_info.sha256,
        recipe=dict(
            groups=groups,
            width=width,
            neighbours=neighbours,
            patches=patches,
            patch=patch,
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
        ),  # fmt: skip
        seconds=dict(symbols=round(collect_s), training=round(time.time() - started)),
    )
    return model, results


def cmd_context(args) -> int:
    import platform

    model, results = train_context(
        args.base,
        weights_dir=args.to,
        cache=args.cache,
        groups=args.groups,
        width=args.width,
        neighbours=args.neighbours,
        patches=args.patches,
        patch=args.patch,
        steps=args.steps,
        seed=args.seed,
    )
    training = {
        "mode": "context prior only",
        "data": "Debian wallpaper packages "
        + ", ".join(data.PACKAGES)
        + f"; validation photos held out by name: {', '.join(data.VALIDATION)}",
        "hardware": f"{platform.processor() or platform.machine()} CPU",
        "torch": torch.__version__,
        "exported": time.strftime("%Y-%m-%d"),
        "note": f"{results['base']}'s weights unchanged (sha256 {results['base_sha256'][:12]}) plus a context "
        "prior trained on its frozen rounded symbols (python -m app.training context)",
        **{k: v for k, v in results.items() if k not in ("base_sha256",)},
    }
    info = save_weights(model, args.to, args.id, trained=True, training=training, make_default=not args.no_default)
    print(f"exported {info.model_id} -> {info.path} (sha256 {info.sha256[:12]})")
    return 0
