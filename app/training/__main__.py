"""Developer commands for the model: ``python -m app.training data|train|export``.

data    download the Debian wallpaper packages, unpack them into the cache, write the
        validation folder and the training pack (see ``data``)
train   train or resume a run folder (see ``train``); ``--minutes`` pauses it cleanly
export  write a run's model into a weights folder with its manifest entry
onnx    export a model's decoder as an ONNX graph (ONNX Runtime's CPU path), listed in the manifest
adapters  compare per-image decoder adapters (bytes, held-out gain, net of their price) on photos
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from app.codec.engine.device import select_device
from app.codec.engine.weights import record_results, save_weights
from app.codec.errors import WeightsError
from app.codec.nets.model import HyperThumbnailModel, ModelConfig

from . import data
from .train import DEFAULT_MODEL, MODES, TrainConfig, train, validation_crops


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="fetch photos, write validation folder and training pack")
    p.add_argument("--cache", help="cache folder (default $HYPERTHUMB_DATA or ~/.cache/hyperthumb)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train or resume a run")
    p.add_argument("run", help="run folder (created; resumed when it holds a checkpoint)")
    p.add_argument("--pack", help="training pack folder (default: CACHE/pack)")
    p.add_argument("--validation", help="validation photo folder (default: CACHE/validation)")
    p.add_argument("--mode", choices=MODES, default="hyperthumb")
    p.add_argument(
        "--steps", type=int, help=f"total steps (new run default {TrainConfig.steps}; a resumed run keeps its own)"
    )
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--patch", type=int, default=TrainConfig.patch)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=TrainConfig.validate_every)
    p.add_argument(
        "--lambda-rate0",
        type=float,
        default=TrainConfig.lambda_at_rate0,
        help="bpp weight at LOW",
    )
    p.add_argument(
        "--lambda-rate1",
        type=float,
        default=TrainConfig.lambda_at_rate1,
        help="bpp weight at HIGH",
    )
    p.add_argument("--thumb-weight", type=float, default=TrainConfig.thumb_weight)
    p.add_argument(
        "--thumb-weight-per-rate", action="store_true",
        help="detail models: the thumbnail term weighted by lambda(0.5) / lambda(rate) per crop, like the base's distortion",
    )  # fmt: skip
    p.add_argument(
        "--thumb-sizes-from", metavar="WEIGHTS",
        help="detail models with a trainable thumbnail: hold the thumbnail's bits at this weights file's "
        "(its encoder and QPM, on the same crops at the same rates) by a per-rate price on them",
    )  # fmt: skip
    p.add_argument("--thumb-size-step", type=float, default=TrainConfig.thumb_size_step,
                   help="the size hold's dual-ascent step on its log-prices")  # fmt: skip
    p.add_argument(
        "--distill-from", metavar="WEIGHTS",
        help="a leaner decoder (--trains detail): this weights file's base reconstruction is a second target for the "
        "student's base (it must share the student's thumbnail)",
    )  # fmt: skip
    p.add_argument("--distill-weight", type=float, default=TrainConfig.distill_weight,
                   help="the teacher's share of the base's distortion (0..1)")  # fmt: skip
    p.add_argument("--warmup", type=int, default=TrainConfig.warmup, help="linear learning-rate warm-up steps")
    p.add_argument(
        "--trains",
        choices=("all", "decoder", "detail"),
        default=TrainConfig.trains,
        help="decoder: freeze encoder and QPM (the files' bytes stay; for an MSE phase); "
        "detail: freeze encoder and QPM, train the decoder and the detail layer",
    )
    p.add_argument(
        "--rate-warmup",
        type=int,
        default=TrainConfig.rate_warmup,
        help="detail models: steps over which the rate term's weight rises from 0",
    )
    p.add_argument(
        "--gain-lr-scale",
        type=float,
        help=f"detail models: the rate gains' learning rate, times the others' (default "
        f"{TrainConfig.gain_lr_scale}; also changes a resumed run's)",
    )
    p.add_argument(
        "--base-weight",
        type=float,
        default=TrainConfig.base_weight,
        help="detail models: weight of the distortion without the detail layer",
    )
    p.add_argument(
        "--base-weight-below",
        type=float,
        default=None,
        help="detail models: the base's distortion weight at rates below the layer's start, the same at every "
        "rate (default: --base-weight / lambda(rate), as above it; a new decoder needs its base trained at LOW too)",
    )
    p.add_argument(
        "--detail-lambda-edge",
        type=float,
        default=None,
        help="detail models: lambda of the layer's terms where the layer starts (rate just above the "
        "thumbnail's best), falling to --lambda-rate1 at rate 1 (default: the knob's one schedule)",
    )
    p.add_argument("--loss", choices=("l1", "mse"), default=TrainConfig.loss, help="reconstruction distortion")
    p.add_argument(
        "--precision",
        choices=("bf16", "fp32"),
        default=TrainConfig.precision,
        help="bf16: networks under bfloat16 autocast where the device has it natively (JPEG model, DCT, "
        "rate stay float32)",
    )
    p.add_argument(
        "--model",
        help="architecture as JSON (ModelConfig.to_dict); default: the recipe's",
    )
    p.add_argument(
        "--init-from",
        help="start from another run's checkpoint.pt (e.g. a shorter run)",
    )
    p.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    p.add_argument(
        "--minutes",
        type=float,
        help="pause after this long (checkpointed; run again to resume)",
    )
    p.add_argument(
        "--snapshot",
        metavar="FILE",
        help="also write the model (no optimizer state) and its step here at every checkpoint: the file to commit",
    )
    p.add_argument(
        "--resume-from",
        metavar="FILE",
        help="continue a --snapshot file (its recipe and step) in a run folder without a checkpoint",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even if a checkpoint exists",
    )

    p = sub.add_parser("export", help="install a run's model into a weights folder")
    p.add_argument("run", help="run folder, or a .snapshot.pt file")
    p.add_argument("--to", default="model_weights", help="weights folder (default: model_weights)")
    p.add_argument("--id", required=True, help="model id, e.g. hyperthumb-x4-v1")
    p.add_argument("--role", help='e.g. "jpeg-sr-baseline" for the evaluation baseline')
    p.add_argument(
        "--hardware",
        default=f"{platform.processor() or platform.machine()} CPU",
        help="what it was trained on",
    )
    p.add_argument("--no-default", action="store_true", help="do not make it the default model")
    p.add_argument("--note", help="anything else the manifest should say about how it was trained")

    p = sub.add_parser("onnx", help="export a model's decoder as an ONNX graph for ONNX Runtime (needs onnx)")
    p.add_argument("--to", default="model_weights", help="weights folder (default: model_weights)")
    p.add_argument("--id", help="model id (default: the manifest's default)")

    p = sub.add_parser("adapters", help="which per-image decoder adapter pays best per byte, on some photos")
    p.add_argument("photos", nargs="+", help="photo files")
    p.add_argument("--weights", default="model_weights", help="weights folder (default: model_weights)")
    p.add_argument("--snapshot", help="a training snapshot (.snapshot.pt) instead of installed weights")
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=80)

    p = sub.add_parser("context", help="train a detail model's context prior on its frozen symbols (a new model)")
    p.add_argument("--base", help="the detail model it extends (default: the manifest's default)")
    p.add_argument("--id", required=True, help="the new model's id, e.g. hyperthumb-x4-v5c")
    p.add_argument("--to", default="model_weights", help="weights folder (default: model_weights)")
    p.add_argument("--cache", help="data cache folder (default $HYPERTHUMB_DATA or ~/.cache/hyperthumb)")
    p.add_argument("--groups", type=int, default=4, help="channel groups, each coded in two checkerboard passes")
    p.add_argument("--width", type=int, default=32, help="hidden width of each step's network")
    p.add_argument(
        "--neighbours", default="group", choices=("group", "all"),
        help="what the first 3x3 reads spatially: the group's anchors (group) or every input (all)",
    )  # fmt: skip
    p.add_argument("--patches", type=int, default=2048, help="training patches")
    p.add_argument("--patch", type=int, default=256, help="patch side in photo pixels (a multiple of 64)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-default", action="store_true", help="do not make it the default model")

    p = sub.add_parser("record-results", help="store an eval summary.json in a model's manifest entry")
    p.add_argument("summary", help="summary.json written by `hyperthumb eval`")
    p.add_argument("--to", default="model_weights", help="weights folder (default: model_weights)")
    p.add_argument("--command", dest="eval_command", help="the eval command line that produced it")
    return parser


def cmd_train(args) -> int:
    from app.codec.engine.allocator import keep_freed_memory

    keep_freed_memory()  # every step frees and re-allocates the same big tensors: keep them off the page-fault path
    cache = data.cache_dir(None)
    run = Path(args.run)
    saved = run / "config.json"
    if args.resume_from and not saved.is_file():
        config = TrainConfig(**torch.load(args.resume_from, map_location="cpu", weights_only=False)["config"])
        if args.steps is not None:
            config.steps = args.steps
    elif saved.is_file() and not args.no_resume:
        config = TrainConfig(**json.loads(saved.read_text()))  # a resumed run keeps its recipe ...
        if args.steps is not None:
            config.steps = args.steps  # ... but may be lengthened or shortened (the cosine follows)
    else:
        model = json.loads(args.model) if args.model else DEFAULT_MODEL.to_dict()
        ModelConfig.from_dict(model)  # validate early
        config = TrainConfig(
            mode=args.mode,
            steps=args.steps or TrainConfig.steps,
            batch=args.batch,
            patch=args.patch,
            lr=args.lr,
            seed=args.seed,
            validate_every=args.validate_every,
            model=model,
            lambda_at_rate0=args.lambda_rate0,
            lambda_at_rate1=args.lambda_rate1,
            thumb_weight=args.thumb_weight,
            thumb_weight_per_rate=args.thumb_weight_per_rate,
            thumb_sizes_from=args.thumb_sizes_from,
            thumb_size_step=args.thumb_size_step,
            distill_from=args.distill_from,
            distill_weight=args.distill_weight,
            loss=args.loss,
            precision=args.precision,
            warmup=args.warmup,
            trains=args.trains,
            base_weight=args.base_weight,
            base_weight_below=args.base_weight_below,
            rate_warmup=args.rate_warmup,
            detail_lambda_at_edge=args.detail_lambda_edge,
        )
    if args.gain_lr_scale is not None:
        config.gain_lr_scale = args.gain_lr_scale
    crops, weights = data.load_pack(args.pack or cache / "pack")
    val_folder = Path(args.validation or cache / "validation")
    validation = validation_crops(val_folder) if val_folder.is_dir() else None
    device = str(select_device(args.device))
    train(
        run,
        config,
        crops,
        weights,
        validation,
        device=device,
        resume=not args.no_resume,
        init_from=args.init_from,
        stop_after_s=args.minutes * 60 if args.minutes else None,
        snapshot=args.snapshot,
        resume_from=args.resume_from,
    )
    return 0


def _summary_from_log(run: Path) -> dict:
    """Step count, time and the last validation numbers, for the manifest."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in records if "loss" in r]
    vals = [r for r in records if "val" in r]
    return {
        "steps": steps[-1]["step"] if steps else 0,
        "train_seconds": round(steps[-1]["s"]) if steps else 0,
        "last_validation_crops": vals[-1]["val"] if vals else None,
        "devices": sorted({r["device"] for r in records if r.get("event") == "start"}),
    }


def _load_trained(source: Path) -> tuple[TrainConfig, dict, dict]:
    """A run folder (config, checkpoint, log) or a committed ``.snapshot.pt`` file: config, weights, summary.

    A snapshot is what survives a machine change (runs/ does not), so it must be installable on its own;
    its summary has the step and time but no validation numbers (say them with ``--note``)."""
    if source.is_file():
        state = torch.load(source, map_location="cpu", weights_only=False)
        config = TrainConfig(**state["config"])
        summary = {"steps": state["step"], "train_seconds": round(state.get("elapsed_s", 0)),
                   "from_snapshot": source.name}  # fmt: skip
        return config, state["model"], summary
    config = TrainConfig(**json.loads((source / "config.json").read_text()))
    state = torch.load(source / "checkpoint.pt", map_location="cpu", weights_only=False)
    return config, state["model"], _summary_from_log(source)


def cmd_export(args) -> int:
    config, weights, summary = _load_trained(Path(args.run))
    model = HyperThumbnailModel(ModelConfig.from_dict(config.model))
    model.load_state_dict(weights)
    training = {
        "mode": config.mode,
        "data": "Debian wallpaper packages "
        + ", ".join(data.PACKAGES)
        + f"; validation photos held out by name: {', '.join(data.VALIDATION)}",
        "recipe": {k: v for k, v in config.__dict__.items() if k != "model"},
        "hardware": args.hardware,
        "torch": torch.__version__,
        "exported": time.strftime("%Y-%m-%d"),
        **summary,
    }
    if args.note:
        training["note"] = args.note
    kwargs = {"role": args.role} if args.role else {}
    info = save_weights(
        model,
        args.to,
        args.id,
        trained=True,
        training=training,
        make_default=not args.no_default and not args.role,
        **kwargs,
    )
    print(
        f"exported {info.model_id} -> {info.path} (sha256 {info.sha256[:12]}, {info.path.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


def cmd_record_results(args) -> int:
    """Keep the headline numbers (presets, BD-PSNR) of an eval run with the weights it measured."""
    summary = json.loads(Path(args.summary).read_text())
    model_id = summary["weights"]["model_id"]
    results = {
        "command": args.eval_command,
        "images": summary["images"],
        "crop": summary["crop"],
        "device": summary["device"],
        "presets": summary["presets"],
        "bd_psnr_vs_bicubic_jpeg_db": {
            name: {
                "whole_overlap": m["bd_psnr_vs_anchor_db"],
                "preset_range": m["bd_psnr_vs_anchor_in_preset_range_db"],
            }
            for name, m in summary["methods"].items()
        },
    }
    if summary.get("vs_avif"):
        results["bd_psnr_vs_avif_full_db"] = {name: row["overall_db"] for name, row in summary["vs_avif"].items()
                                              if isinstance(row, dict)}  # fmt: skip
    preview = summary.get("preview_bd_psnr_vs_plain_jpeg_thumbnails") or {}
    if "overall_db" in preview:
        results["preview_bd_psnr_vs_plain_jpeg_thumbnails_db"] = {"overall": preview["overall_db"],
                                                                  "worst_image": preview["worst_image_db"]}  # fmt: skip
    record_results(args.to, model_id, results)
    print(f"recorded results for {model_id} in {Path(args.to) / 'manifest.json'}")
    return 0


def cmd_adapters(args) -> int:
    """One line per photo and adapter kind, then the means."""
    import numpy as np

    from app.codec.engine.weights import find_weights, load_model
    from app.codec.files.imageio import load_image

    from .adapters import KINDS, score_adapters

    torch.manual_seed(0)
    if args.snapshot:
        state = torch.load(args.snapshot, map_location="cpu", weights_only=False)
        model = HyperThumbnailModel(ModelConfig.from_dict(state["config"]["model"]))
        model.load_state_dict(state["model"])
        model.eval()
    else:
        model = load_model(find_weights(args.weights))
    totals: dict[str, list] = {kind: [] for kind in KINDS}
    for path in args.photos:
        photo = load_image(path).rgb
        for score in score_adapters(model, photo, args.rate, args.steps):
            totals[score.kind].append(score)
            print(
                f"{Path(path).name:<28} {score.kind:<17} gain {score.gain_db:+.3f} dB  {score.payload_bytes:5d} B  "
                f"net {score.net_db:+.3f} dB",
                flush=True,
            )
    for kind, scores in totals.items():
        print(
            f"{'mean':<28} {kind:<17} gain {np.mean([s.gain_db for s in scores]):+.3f} dB  "
            f"{np.mean([s.payload_bytes for s in scores]):5.0f} B  net {np.mean([s.net_db for s in scores]):+.3f} dB"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            data.prepare(args.cache, seed=args.seed)
            return 0
        if args.command == "train":
            return cmd_train(args)
        if args.command == "record-results":
            return cmd_record_results(args)
        if args.command == "context":
            from .context import cmd_context

            return cmd_context(args)
        if args.command == "adapters":
            return cmd_adapters(args)
        if args.command == "onnx":
            from .onnx_export import export_onnx

            export_onnx(args.to, args.id)
            return 0
        return cmd_export(args)
    except (data.DataError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted (the last checkpoint is kept; run again to resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
