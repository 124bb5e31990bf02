"""What a leaner decoder would cost: the viewport decode time of decoder shapes, before training them.

    python docs/perf/decoder_cost.py [--runtime torch-fp32-fused] [--repeat 3] [--size 2560x1600]
                                     [--variant NAME:JSON ...] [--json]

Time depends on the decoder's shape, not on its weights, so each variant is the default model
(its encoder, detail layer and coder: one real FINE file made once) with its decoder replaced by a
randomly initialised one of the variant's shape (``DecoderConfig`` fields over the default's).
Each is timed as `hyperthumb bench` times its viewport stages, through the same ``Reconstructor``
and runtime code: a 1920x1080 region at 100%, base (``detail=False``) and with the file's detail
latent already decoded (what the viewer shows after its background decode). The multiply-adds
per thumbnail pixel are counted from the shapes. The frontier in docs/PERFORMANCE.md puts these
costs beside the trained decoders' BD-PSNR. Not a product path: nothing here ships.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from app.bench import BenchSettings, _viewport_box, device_name, time_stage
from app.codec.api import RATE_PRESETS, Codec
from app.codec.engine.detail_layer import DetailSource
from app.codec.engine.inference import DEFAULT_DECODE_TILE, Reconstructor
from app.codec.engine.runtime import build_runtime
from app.codec.files.imageio import LoadedImage
from app.codec.files.payload import DETAIL_KIND, unpack_records
from app.codec.files.reader import read_thumbnail
from app.codec.nets.decoder import Decoder
from app.synthetic import photo_like

VARIANTS = {
    "default (v5)": {},
    "48x2": {"blocks": 2},
    "32x3": {"channels": 32},
    "32x2": {"channels": 32, "blocks": 2},
    "24x2": {"channels": 24, "blocks": 2},
    "32x2, frequency 96x2": {"channels": 32, "blocks": 2, "freq_channels": 96, "freq_blocks": 2},
    "32x2, synthesis 64": {"channels": 32, "blocks": 2, "detail_channels": 64},
}


def macs_per_thumbnail_pixel(decoder: Decoder, with_detail: bool) -> float:
    """Multiply-adds per thumbnail pixel, counted from the layers' shapes and where they run
    (thumbnail resolution, the 8x8 block grid, the latent's 1/4 grid)."""
    per_position = {"freq": 1 / 64, "detail": 1 / 16}
    total = 0.0
    for name, m in decoder.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue  # the table code's Linear layers run once per image
        macs = m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] / m.groups
        if name.startswith("detail") and not with_detail:
            continue
        if name == "detail_linear":
            total += macs / 16
        elif name.startswith("freq"):
            total += macs * per_position["freq"]
        elif name.startswith(("detail_in", "detail_body", "detail_out")):
            total += macs * per_position["detail"]
        else:
            total += macs
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="torch-fp32-fused")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", default="2560x1600")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:JSON")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    variants = dict(VARIANTS)
    for text in args.variant:
        name, fields = text.split(":", 1)
        variants[name] = json.loads(fields)
    w, h = map(int, args.size.lower().split("x"))

    codec = Codec(runtime=args.runtime)
    info = codec.weights()
    model = codec.model(info)
    settings = BenchSettings(width=w, height=h, repeat=args.repeat, warmup=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fine.jpg"
        photo = LoadedImage(
            rgb=photo_like(w, h, seed=0), exif=None, icc_profile=None, orientation=1, source_format="PNG"
        )
        codec.encode_photo(photo, path, rate=RATE_PRESETS["FINE"], force=True, weights=info, effort="fast")
        thumbnail = read_thumbnail(path)
    record = unpack_records(thumbnail.payload)[DETAIL_KIND]
    coder = codec.detail_coder(info)
    viewport = _viewport_box(w, h, settings.viewport)
    rows = []
    for name, fields in variants.items():
        config = replace(model.config.decoder, **fields)
        variant = model  # the encoder, the layer and its coder stay; only the decoder is replaced
        torch.manual_seed(0)
        variant.decoder = Decoder(config, model.config.scale).to(codec.device, codec.dtype).eval()
        for p in variant.decoder.parameters():
            p.requires_grad_(False)
            p.add_(torch.randn_like(p) * 0.01)  # no zero-initialised layer: every layer does its arithmetic
        runtime = build_runtime(args.runtime, variant, info)
        reconstructor = Reconstructor(
            variant, thumbnail.ycbcr, thumbnail.luma_table, thumbnail.chroma_table, (w, h), runtime
        )
        reconstructor.detail = DetailSource(coder, record, thumbnail.ycbcr)
        reconstructor.prefetch_detail()
        base = time_stage(
            lambda r=reconstructor: r.decode(viewport, tile=DEFAULT_DECODE_TILE, detail=False),
            runtime.device,
            args.repeat,
            1,
        )
        layered = time_stage(
            lambda r=reconstructor: r.decode(viewport, tile=DEFAULT_DECODE_TILE), runtime.device, args.repeat, 1
        )
        rows.append(
            {
                "variant": name,
                "decoder": asdict(config),
                "parameters": sum(p.numel() for p in variant.decoder.parameters()),
                "macs_per_thumbnail_pixel": {
                    "base": macs_per_thumbnail_pixel(variant.decoder, False),
                    "with_layer": macs_per_thumbnail_pixel(variant.decoder, True),
                },
                "viewport_ms": {"base": base["median_ms"], "with_layer": layered["median_ms"]},
                "fused": getattr(runtime, "fused_branch", None) is not None,
            }
        )
        if not args.json:
            r = rows[-1]
            print(
                f"{name:<24} {r['macs_per_thumbnail_pixel']['base'] / 1e3:6.1f}k / "
                f"{r['macs_per_thumbnail_pixel']['with_layer'] / 1e3:6.1f}k MAC/px   viewport "
                f"{r['viewport_ms']['base']:6.0f} ms base, {r['viewport_ms']['with_layer']:6.0f} ms with the layer",
                flush=True,
            )
    report = {
        "device": device_name(codec.device),
        "runtime": args.runtime,
        "threads": torch.get_num_threads(),
        "weights": info.model_id,
        "viewport": [viewport.width, viewport.height],
        "repeat": args.repeat,
        "variants": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
