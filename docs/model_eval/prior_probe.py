"""How far is the detail prior from the bits it could give? A probe beside MODEL.md's figures
("The prior: what a refit and a context could give"), not a product path.

Training scores the layer's bits on noisy latents (y + U(-1/2, 1/2)); files code rounded ones.
Two questions, on a model's rounded symbols ``q = round(gained latent - mean)``:

1. **Refit** (no new format): fit the prior's last-layer scale rows, and/or a per-channel scale
   offset interpolated over the rate knob, to the rounded symbols of training patches (the pack),
   and judge the bits on the validation photos' 512 px centre crops (held out).
2. **Context** (a new format's potential): on the validation crops, half the photos to fit and
   half to judge, how many bits a per-channel scale correction saves when it may also read
   (a) nothing (a shift), (b) a checkerboard's decoded neighbours, (c) those and the earlier
   channel quarters at the same position.

    python docs/model_eval/prior_probe.py --model hyperthumb-x4-v5 [--patches 128]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.codec.engine.weights import find_weights, load_model  # noqa: E402
from app.codec.nets.detail import RATE_LEVELS, SCALE_LEVELS, latent_bits, scale_from_position  # noqa: E402
from app.training import data  # noqa: E402
from app.training.train import CropSampler, frozen_encoder_forward, validation_crops  # noqa: E402

RATES = (0.55, 0.7, 0.85, 1.0)
ANCHORS = 7  # rate offsets: anchors over the layer's range [0.4, 1]
LADDER = math.log(64.0 / 0.11) / (SCALE_LEVELS - 1)  # log-scale per scale index


@torch.no_grad()
def symbols_and_features(model, photos, rates):
    """Per crop at its rate: the prior's last hidden layer [B, P, h, w], its mean and scale
    position [B, C, h, w], and the rounded symbols [B, C, h, w], as the encoder makes them."""
    out = {"hidden": [], "position": [], "q": []}
    for hr, rate in zip(photos.split(4), rates.split(4)):
        rate = torch.round(rate * RATE_LEVELS) / RATE_LEVELS
        base, sim = frozen_encoder_forward(model, hr, model.config.thumbnail_rate(rate))
        base = torch.round(base.clamp(0, 1) * 255) / 255
        y = model.analysis(hr, base, sim.decoded).float() * model.gains.gain(rate)
        x = model.prior.inputs(sim.decoded_ycbcr.float(), torch.round(rate * RATE_LEVELS)) / 128.0
        for layer in model.prior.layers[:-1]:
            x = torch.relu(layer(x))
        head = model.prior.layers[-1](x)
        c = head.shape[1] // 2
        out["hidden"].append(x)
        out["position"].append(head[:, c:])
        out["q"].append(torch.round(y - head[:, :c]))
    return {k: torch.cat(v) for k, v in out.items()}


def flat(t):
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def rate_weights(rate):
    pos = ((rate - 0.4) / 0.6).clamp(0, 1) * (ANCHORS - 1)
    lo = pos.floor().long().clamp(max=ANCHORS - 2)
    w = torch.zeros(len(rate), ANCHORS)
    w[torch.arange(len(rate)), lo] = 1 - (pos - lo)
    w[torch.arange(len(rate)), lo + 1] = pos - lo
    return w


def bits(q, position):
    return float(latent_bits(q, torch.zeros(()), torch.round(position).clamp(0, SCALE_LEVELS - 1)).sum())


def refit(train, rates, w0, b0, head: bool, offsets: bool, steps=150, lr=0.05):
    """Scale rows (``head``) and/or rate offsets fitted by full-batch Adam on the train symbols."""
    w, b = w0.clone().requires_grad_(head), b0.clone().requires_grad_(head)
    off = torch.zeros(ANCHORS, w0.shape[0], requires_grad=offsets)
    optimizer = torch.optim.Adam([p for p in (w, b, off) if p.requires_grad], lr=lr)
    f, q, rw = flat(train["hidden"]), flat(train["q"]), rate_weights(rates)
    count = q.numel()
    for step in range(steps):
        optimizer.zero_grad()
        for fc, qc, rc in zip(f.split(16384), q.split(16384), rw.split(16384)):
            (latent_bits(qc, torch.zeros(()), fc @ w.T + b + rc @ off).sum() / count).backward()
        optimizer.step()
        for g in optimizer.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
    return w.detach(), b.detach(), off.detach()


def context_saving(s, feature, fit_half, test_half):
    """Per channel: log-scale correction a + c * log(feature), c by least squares on log|e| and
    a by a grid over the fit half's bits; the test half's bits before and after."""
    q, p = s["q"], torch.round(s["position"])
    e = q / scale_from_position(p)
    before = after = 0.0
    for ch in range(q.shape[1]):
        f = torch.log(feature[:, ch] + 0.05)
        x, t = f[fit_half].flatten(), torch.log(e[fit_half, ch].abs().flatten() + 0.1)
        slope = 0.0 if float(x.std()) < 1e-6 else float(torch.cov(torch.stack([x, t]))[0, 1] / x.var())
        centred = f - f[fit_half].mean()
        best = min(
            (
                float(
                    latent_bits(
                        q[fit_half, ch], torch.zeros(()), p[fit_half, ch] + (slope * centred[fit_half] + a) / LADDER
                    ).sum()
                ),
                a,
            )
            for a in torch.linspace(-1, 1, 21).tolist()
        )[1]
        corrected = p[test_half, ch] + (slope * centred[test_half] + best) / LADDER
        before += float(latent_bits(q[test_half, ch], torch.zeros(()), p[test_half, ch]).sum())
        after += float(
            latent_bits(q[test_half, ch], torch.zeros(()), corrected.round().clamp(0, SCALE_LEVELS - 1)).sum()
        )
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="installed model id (default: the default model)")
    parser.add_argument("--patches", type=int, default=128, help="training patches of 256 px for the refit")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = load_model(find_weights(model_id=args.model))
    cache = data.cache_dir(None)
    crops, weights = data.load_pack(cache / "pack")
    photos = CropSampler(crops, weights, 256, args.seed).batch(args.patches)
    rates = (0.4 + 0.6 * torch.rand(args.patches)).clamp(0.41, 1.0)
    started = time.time()
    train = symbols_and_features(model, photos, rates)
    rates_flat = rates.repeat_interleave(train["q"].shape[2] * train["q"].shape[3])
    val = validation_crops(cache / "validation", size=512)
    held = {r: symbols_and_features(model, val, torch.full((len(val),), r)) for r in RATES}
    print(
        f"{model.config.detail.latent} channels; {args.patches} patches, {len(val)} validation crops ({time.time() - started:.0f} s)"
    )
    last = model.prior.layers[-1]
    c = model.config.detail.latent
    w0, b0 = last.weight[c:, :, 0, 0].detach(), last.bias[c:].detach()
    print("1. refit on training patches, bits saved on the validation crops (held out):")
    print("   " + " ".join(f"rate {r:<5}" for r in RATES) + "  in-sample")
    before = {r: bits(flat(s["q"]), flat(s["position"])) for r, s in held.items()}
    train_before = bits(flat(train["q"]), flat(train["position"]))
    for name, head, offsets in (("rate offsets", False, True), ("scale rows", True, False), ("both", True, True)):
        w, b, off = refit(train, rates_flat, w0, b0, head, offsets)
        row = []
        for r, s in held.items():
            position = flat(s["hidden"]) @ w.T + b + rate_weights(torch.full((len(flat(s["q"])),), r)) @ off
            row.append(100 * (1 - bits(flat(s["q"]), position) / before[r]))
        inside = flat(train["hidden"]) @ w.T + b + rate_weights(rates_flat) @ off
        train_saving = 100 * (1 - bits(flat(train["q"]), inside) / train_before)
        print(f"   {name:<13}" + " ".join(f"{v:+9.1f}%" for v in row) + f"  {train_saving:+.1f}%")
    print("2. context, fitted on 4 validation photos and judged on the other 4 (bits saved):")
    fit_half, test_half = slice(0, None, 2), slice(1, None, 2)
    for r, s in held.items():
        a = (s["q"] / scale_from_position(torch.round(s["position"]))).abs()
        neighbours = sum(torch.roll(a, k, d) for k, d in ((1, 2), (-1, 2), (1, 3), (-1, 3))) / 4
        earlier = torch.zeros_like(a)
        for k in range(1, 4):
            lo, hi = k * c // 4, (k + 1) * c // 4
            earlier[:, lo:hi] = a[:, :lo].mean(1, keepdim=True)
        i = torch.arange(a.shape[2])[:, None] + torch.arange(a.shape[3])[None, :]
        anchor = (i % 2 == 0)[None, None]
        ones = torch.ones_like(a)
        row = []
        for feature in (
            ones,
            torch.where(anchor, ones, neighbours),
            torch.where(anchor, earlier, (neighbours + earlier) / 2),
        ):
            b, after = context_saving(s, feature, fit_half, test_half)
            row.append(100 * (1 - after / b))
        print(
            f"   rate {r}: shift {row[0]:+.1f}%, checkerboard {row[1]:+.1f}%, checkerboard + channel quarters {row[2]:+.1f}%"
        )


if __name__ == "__main__":
    main()
