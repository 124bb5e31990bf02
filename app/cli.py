"""The ``hyperthumb`` command: encode, decode, inspect and evaluate HyperThumbnails.

``main(argv)`` returns an exit code and never lets anything escape as a traceback: 0 success,
1 an error (one line on stderr: the CodecError's sentence, or "internal error: ..." for a bug),
2 bad usage, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Warnings are one line too.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from app.codec.errors import CodecError, ReencodedError, printable, shorten, user_message

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
MESSAGE_LIMIT = 400  # characters of one error line; longer ones are cut in the middle
MAX_TILE = 4096  # thumbnail pixels a side; the defaults are 256 (encode) and 512 (decode)


def _integer(text: str, what: str, low: int, high: int | None = None) -> int:
    """An integer argument in low..high, or a usage error that quotes at most 40 characters of it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {shorten(text)!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise argparse.ArgumentTypeError(f"{what} must be {bounds}, not {shorten(text)}")
    return value


def _region(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"region must be x,y,w,h (four integers), not {shorten(text)!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError("region needs x,y >= 0 and w,h > 0")
    return x, y, w, h


def _positive(text: str) -> int:
    return _integer(text, "tile", 8, MAX_TILE)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 6144x4096, not {shorten(text)!r}") from None
    if width < 32 or height < 32:
        raise argparse.ArgumentTypeError("size must be at least 32x32")
    from app.codec.files.limits import check_pixel_budget

    try:
        check_pixel_budget(width, height, "the bench image")
    except CodecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return width, height


def _crop(text: str) -> int:
    return _integer(text, "crop", 32)


def _at_least_one(text: str) -> int:
    return _integer(text, "the number", 1)


def _zoom(text: str) -> int:
    return _integer(text, "zoom", -(2**31))  # its range is the compare command's to say


def _warmup(text: str) -> int:
    return _integer(text, "warmup", -(2**31))


RUNTIME_HELP = (
    "torch-fp32, torch-fp32-fused, torch-bf16, onnx-fp32, torch-cuda-fp16 or torch-mps (also HYPERTHUMB_RUNTIME)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperthumb", description="JPEG thumbnails that carry a full-resolution photo."
    )
    parser.add_argument("--weights", metavar="DIR", help="weights folder with manifest.json (default: model_weights/)")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="photo -> HyperThumbnail JPEG")
    enc.add_argument("input")
    enc.add_argument("output")
    enc.add_argument("--rate", default="MEDIUM", help="LOW, MEDIUM, HIGH or a number in 0..1 (default MEDIUM)")
    enc.add_argument(
        "--effort",
        choices=("fast", "default", "best"),
        default="default",  # adaptation.EFFORT_STEPS
        help="fast: the networks only; default: also fit the decoder to this photo (seconds); best: fit it "
        "longer and, above HIGH (where the file has a detail layer), fit that layer to the photo (a better file for its bytes; about a "
        "minute per megapixel on a 2-core CPU)",
    )
    enc.add_argument(
        "--strip-gps",
        action="store_true",
        help="drop the GPS position from the carried-over EXIF, and the location (city...) from its XMP and IPTC",
    )
    enc.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    enc.add_argument("--runtime", default=None, metavar="NAME", help="auto (default) or torch-fp32 (float32 encoder)")
    enc.add_argument("--tile", type=_positive, default=None, help="encoder tile size in thumbnail pixels")
    enc.add_argument("--force", action="store_true", help="overwrite the output if it exists")

    conv = sub.add_parser(
        "convert",
        help="a folder tree of photos -> HyperThumbnails with the same relative paths (resumable)",
        description="Mirror SRC into DST as HyperThumbnails (DST/rel/path/name.jpg). A journal in "
        "DST/.hyperthumb-convert.sqlite3 makes it resumable: run the same command again after an "
        "interruption, or later to convert only new and changed photos.",
    )
    conv.add_argument("source", metavar="SRC", help="folder of photos (searched recursively)")
    conv.add_argument("destination", metavar="DST", help="output folder (created if missing)")
    conv.add_argument("--rate", default="MEDIUM", help="LOW, MEDIUM, HIGH or a number in 0..1 (default MEDIUM)")
    conv.add_argument(
        "--effort",
        choices=("fast", "default", "best"),
        default="default",
        help="fast: the networks only; default: also fit the decoder to each photo (seconds); best: fit it "
        "longer and fit the detail layer too (about a minute per megapixel on a 2-core CPU)",
    )
    conv.add_argument("--strip-gps", action="store_true", help="drop the GPS position and location metadata")
    conv.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    conv.add_argument("--runtime", default=None, metavar="NAME", help="auto (default) or torch-fp32 (float32 encoder)")
    conv.add_argument("--tile", type=_positive, default=None, help="encoder tile size in thumbnail pixels")
    conv.add_argument(
        "--workers",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="worker processes, each with its own model (default 1: in this process)",
    )
    conv.add_argument(
        "--threads-per-worker",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="torch threads in each worker (default: the cores shared out; with --engine ray, --cpus-per-worker); "
        "the same bytes on two runs need the same threads per worker",
    )
    conv.add_argument("--dry-run", action="store_true", help="say what would be done; write nothing")
    conv.add_argument(
        "--show", type=_at_least_one, default=10, metavar="N", help="paths listed by --dry-run (default 10)"
    )
    conv.add_argument("--report", metavar="FILE", help="write the per-file report: FILE.json or FILE.csv")
    conv.add_argument("--force", action="store_true", help="convert every photo again, replacing earlier outputs")
    conv.add_argument("--retry-failed", action="store_true", help="try again the photos that failed in earlier runs")
    conv.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local (default): worker processes on this machine, with a journal; ray: a Ray cluster "
        "(Ray Data actors; SRC and DST may then be s3:// or gs:// URIs; needs pip install -e '.[cluster]')",
    )
    conv.add_argument(
        "--address",
        default=None,
        help="with --engine ray: the cluster to join (auto, ray://host:10001); default: a local Ray",
    )
    conv.add_argument(
        "--cpus-per-worker", type=float, default=1.0, metavar="N", help="with --engine ray: CPUs per actor (default 1)"
    )
    conv.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="N",
        help="with --engine ray: GPUs per actor (e.g. 1 or 0.5)",
    )

    dec = sub.add_parser("decode", help="HyperThumbnail -> full-resolution image (PNG, TIFF, ...)")
    dec.add_argument("input")
    dec.add_argument("output")
    dec.add_argument("--region", type=_region, help="x,y,w,h in displayed full-resolution pixels")
    dec.add_argument("--tile", type=_positive, default=None, help="decoder tile size in thumbnail pixels")
    dec.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    dec.add_argument(
        "--runtime",
        default=None,
        metavar="NAME",
        help="decoder engine: auto (default: the fastest measured here), " + RUNTIME_HELP,
    )
    dec.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    dec.add_argument(
        "--no-detail",
        action="store_true",
        help="ignore the file's detail layer: the base reconstruction from the thumbnail alone",
    )
    dec.add_argument(
        "--allow-reencoded",
        action="store_true",
        help="decode a HyperThumbnail another program saved again (its tables are not the encoder's: "
        "the result is worse than the thumbnail)",
    )

    check = sub.add_parser("selfcheck", help="measure that this Pillow/libjpeg behaves as the codec assumes")
    check.add_argument("--json", action="store_true", help="machine-readable output")

    info = sub.add_parser("info", help="is it a HyperThumbnail? sizes, tables, model, bpp")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="machine-readable output")

    ev = sub.add_parser("eval", help="rate-distortion of the codec against standard baselines on a folder")
    ev.add_argument("folder", help="folder of photos (jpg, png, webp, tif, bmp)")
    ev.add_argument(
        "--out",
        default="eval_results",
        metavar="DIR",
        help="results folder (default eval_results/; earlier results in it are replaced)",
    )
    ev.add_argument("--crop", type=_crop, metavar="N", help="fast mode: centre N x N crops (N rounded down to x32)")
    ev.add_argument("--rates", metavar="LIST", help="HyperThumbnail rates, comma-separated (default 0,0.25,0.5,0.75,1)")
    ev.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    ev.add_argument("--limit", type=_at_least_one, metavar="K", help="only the first K images")
    ev.add_argument(
        "--model",
        metavar="ID",
        help="an installed model other than the default (its jpeg+sr "
        "baseline is the one with the same decoder, when installed)",
    )
    ev.add_argument(
        "--ablation",
        action="store_true",
        help="also run the codec without decoder adaptation, without mozjpeg's re-coding, and at effort best",
    )
    ev.add_argument(
        "--effort",
        choices=("fast", "default", "best"),
        default="default",
        help="the HyperThumbnail export's effort (default: default, as the viewer exports)",
    )

    cmp = sub.add_parser("compare", help="one region side by side: original, baselines, HyperThumbnail, preview")
    cmp.add_argument("photo")
    cmp.add_argument("--region", required=True, metavar="X,Y,W,H", help="the region, in displayed pixels")
    cmp.add_argument("--rate", default="MEDIUM", help="LOW, MEDIUM, HIGH or a number in 0..1 (default MEDIUM)")
    cmp.add_argument("--zoom", type=_zoom, default=2, help="enlargement of each panel, nearest-neighbour (default 2)")
    cmp.add_argument(
        "--out", default="compare.png", help="the PNG to write (default compare.png; replaced if it exists)"
    )
    cmp.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")

    bench = sub.add_parser("bench", help="speed and memory of encode/decode on a synthetic 6K photo")
    bench.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    bench.add_argument("--size", type=_size, default=(6144, 4096), metavar="WxH", help="image size (default 6144x4096)")
    bench.add_argument("--repeat", type=_at_least_one, default=5, help="timed runs per stage; the median is reported")
    bench.add_argument("--warmup", type=_warmup, default=1, help="untimed runs first (default 1)")
    bench.add_argument("--tile", type=_positive, default=None, help="decoder tile size in thumbnail pixels")
    bench.add_argument("--scaling", metavar="LIST", help="also time the network at sizes, e.g. 1K,2K,4K,6K,8K")
    bench.add_argument(
        "--runtime",
        metavar="LIST",
        help="runtimes to time, comma-separated (default: auto and every one available): " + RUNTIME_HELP,
    )
    bench.add_argument(
        "--quality-check",
        "--half-check",
        dest="quality_check",
        metavar="FOLDER",
        help="instead: PSNR cost of every fast path vs torch-fp32 on a folder of photos",
    )
    bench.add_argument(
        "--model", metavar="ID", help="an installed model other than the default (e.g. a leaner decoder's)"
    )
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _warn_if_untrained(weights) -> None:
    if not weights.trained:
        print(
            printable(f"hyperthumb: warning: weights {weights.model_id!r} are untrained (for tests only)"),
            file=sys.stderr,
        )


def cmd_encode(args) -> int:
    from app.codec.api import Codec, parse_rate
    from app.progress import ProgressBar

    rate = parse_rate(args.rate)
    codec = Codec(args.weights, args.device, args.tile, args.runtime)
    start = time.monotonic()
    result = codec.encode_file(
        args.input,
        args.output,
        rate=rate,
        strip_gps=args.strip_gps,
        force=args.force,
        effort=args.effort,
        progress=ProgressBar("encoding"),
    )
    for note in result.notes:
        print(printable(f"hyperthumb: note: {note}"), file=sys.stderr)
    _warn_if_untrained(result.weights)
    w, h = result.full_size
    tw, th = result.thumbnail_size
    print(
        printable(
            f"{result.path}: {w}x{h} -> {tw}x{th} thumbnail, {result.file_size} bytes, "
            f"{result.bits_per_pixel:.4f} bpp, {time.monotonic() - start:.1f}s on {codec.device.type}"
        )
    )
    return EXIT_OK


def cmd_convert(args) -> int:
    """A folder tree -> HyperThumbnails; 0 all converted or skipped as intended, 1 any failed,
    130 interrupted (the journal is consistent: the same command goes on)."""
    from app.batch import convert
    from app.codec.api import parse_rate

    report = Path(args.report) if args.report else None
    if report is not None and report.suffix.lower() not in (".json", ".csv"):
        raise CodecError(f"--report must name a .json or .csv file, not {shorten(report.name)}")
    ray = args.engine == "ray"
    if not ray:
        if "://" in args.source or "://" in args.destination:
            raise CodecError("a URI (s3://, gs://...) as SRC or DST needs --engine ray")
        if args.address or args.gpus_per_worker:
            raise CodecError("--address and --gpus-per-worker are options of --engine ray")
    src, dst = Path(args.source), Path(args.destination)
    if not ray:
        convert.check_folders(src, dst)
    if args.dry_run:
        if ray:
            from app.batch import ray_engine

            convert.print_plan(ray_engine.dry_run(args.source, args.destination, force=args.force), args.show)
            return EXIT_OK
        plan, _ = convert.dry_run(src, dst, force=args.force, retry_failed=args.retry_failed)  # print_plan counts
        convert.print_plan(plan, args.show)
        return EXIT_OK
    settings = convert.Settings(
        rate=parse_rate(args.rate),
        effort=args.effort,
        strip_gps=args.strip_gps,
        weights_dir=args.weights,
        device=args.device,
        runtime=args.runtime,
        tile=args.tile,
        threads=args.threads_per_worker,
    )
    from tqdm import tqdm

    bars = []

    def progress(total: int):
        bar = tqdm(
            total=total,
            unit="photo",
            file=sys.stderr,
            disable=None,  # off when stderr is not a terminal (logs, pipes)
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )
        bars.append((bar, time.monotonic()))
        return bar

    def on_result(task, result) -> None:
        bar, started = bars[-1]
        minutes = (time.monotonic() - started) / 60
        bar.set_postfix_str(f"{(bar.n + 1) / minutes:.1f} photos/min" if minutes > 0 else "", refresh=False)
        if result["status"] != "done":
            line = printable(f"hyperthumb: {result['status']}: {task.rel}: {result.get('reason')}")
            tqdm.write(line, file=sys.stderr)

    header = {
        "source": args.source,
        "destination": args.destination,
        "engine": args.engine,
        "settings": json.loads(settings.key()),
    }
    try:
        if ray:
            from app.batch import ray_engine

            summary = ray_engine.convert_with_ray(
                args.source,
                args.destination,
                settings,
                address=args.address,
                workers=args.workers if args.workers > 1 else None,
                cpus_per_worker=args.cpus_per_worker,
                gpus_per_worker=args.gpus_per_worker,
                force=args.force,
                on_result=on_result,
                progress=progress,
            )
        else:
            summary = convert.convert_tree(
                src,
                dst,
                settings,
                workers=args.workers,
                force=args.force,
                retry_failed=args.retry_failed,
                on_result=on_result,
                progress=progress,
            )
    except KeyboardInterrupt as exc:
        from app.codec.files.atomic import Terminated

        print(
            "\nhyperthumb: interrupted; every photo converted so far is kept and recorded: "
            "run the same command again to go on",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    convert.print_summary(summary)
    if report is not None:
        convert.write_report(summary, report, header)
        print(printable(f"wrote {report}"))
    return EXIT_ERROR if summary.failed else EXIT_OK


def cmd_decode(args) -> int:
    from PIL import Image

    from app.codec.api import Codec
    from app.codec.files.atomic import atomic_output, check_target, refuse_source_as_output
    from app.codec.files.orientation import display_box_to_stored, display_size, to_display
    from app.codec.files.outputs import check_output_size, metadata_options, output_format, write_options
    from app.codec.files.reader import read_thumbnail
    from app.codec.files.tiling import Box
    from app.progress import ProgressBar

    out_path = Path(args.output)
    refuse_source_as_output(args.input, out_path)  # before anything, --force or not
    check_target(out_path, args.force)
    out_format = output_format(out_path)
    codec = Codec(args.weights, args.device, args.tile, args.runtime)
    try:
        thumbnail = read_thumbnail(args.input, reencoded_ok=args.allow_reencoded)
    except ReencodedError as exc:
        raise ReencodedError(f"{exc}; --allow-reencoded decodes it anyway") from None
    reconstructor = codec.reconstructor(thumbnail, detail=not args.no_detail)
    marker, orientation = thumbnail.marker, thumbnail.orientation
    region = None
    dw, dh = display_size(marker.width, marker.height, orientation)
    if args.region:
        x, y, w, h = args.region
        if x + w > dw or y + h > dh:
            where = ",".join(shorten(v, 12) for v in args.region)
            raise CodecError(f"region {where} lies outside the {dw}x{dh} image")
        region = display_box_to_stored(Box(y, y + h, x, x + w), marker.width, marker.height, orientation)
        dw, dh = w, h
    check_output_size(out_format, dw, dh, out_path)
    start = time.monotonic()
    tile = codec.decode_tile_for(dw * dh)
    pixels = reconstructor.decode(region, tile=tile, progress=ProgressBar("decoding"))
    seconds = time.monotonic() - start
    for note in reconstructor.notes:  # after decoding: a damaged detail tile is found when it is decoded
        print(printable(f"hyperthumb: note: {note}"), file=sys.stderr)
    image = Image.fromarray(np.ascontiguousarray(to_display(pixels, orientation)))
    extra, notes = metadata_options(
        out_format,
        image.size,
        exif=thumbnail.exif,
        xmp_packet=thumbnail.xmp,
        iptc_segment=thumbnail.iptc,
        icc_profile=thumbnail.icc_profile,
    )
    for note in notes:
        print(printable(f"hyperthumb: note: {note}"), file=sys.stderr)
    with atomic_output(out_path, force=args.force) as tmp:
        try:
            image.save(tmp, format=out_format, **write_options(out_format), **extra)
        except (ValueError, TypeError, KeyError) as exc:  # the encoder refused these pixels or options
            raise CodecError(f"cannot write {shorten(out_path.name)} as {out_format}: {shorten(exc, 120)}") from None
    _warn_if_untrained(codec.weights(marker.weights_sha256))
    print(
        printable(
            f"{out_path}: {image.width}x{image.height} reconstructed in {seconds:.1f}s on {reconstructor.runtime.name}"
        )
    )
    return EXIT_OK


def describe(path: str) -> dict:
    """What ``info`` reports, as a plain dict (also used by tests)."""
    from app.codec.files.document import open_image

    doc = open_image(path)
    report = {
        "file": str(doc.path),
        "file_size": doc.file_size,
        "hyperthumbnail": doc.is_hyperthumbnail,
        "full_size": list(doc.full_size),
        "preview_size": [int(doc.preview.shape[1]), int(doc.preview.shape[0])],
        "orientation": doc.orientation,
    }
    if doc.is_hyperthumbnail:
        thumbnail, m = doc.thumbnail, doc.marker
        report.update(
            format_version=m.version,
            scale=m.scale,
            model_id=m.model_id,
            weights_sha256=m.weights_sha256,
            rate=m.rate,
            bits_per_pixel=doc.bits_per_pixel,
            luma_table=[int(v) for v in thumbnail.luma_table],
            chroma_table=[int(v) for v in thumbnail.chroma_table],
            payload_bytes=m.payload_length,
            payload_problem=thumbnail.payload_problem,
            layers=_layer_bytes(doc.file_size, thumbnail),
        )
    if doc.notes:
        report["notes"] = doc.notes
    return report


def _layer_bytes(file_size: int, thumbnail) -> dict[str, int]:
    """Bytes per layer: the thumbnail (the JPEG without the payload's segments) and each record."""
    from app.codec.files.payload import PayloadError, record_sizes

    if thumbnail.payload is None:
        return {"thumbnail": file_size}
    try:
        records = record_sizes(thumbnail.payload)
    except PayloadError:
        records = {"unreadable payload": len(thumbnail.payload)}
    return {"thumbnail": file_size - thumbnail.payload_file_bytes, **records}


def _table_lines(values: list[int]) -> list[str]:
    return ["    " + " ".join(f"{v:3d}" for v in values[r * 8 : r * 8 + 8]) for r in range(8)]


def cmd_info(args) -> int:
    report = describe(args.file)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    w, h = report["full_size"]
    if not report["hyperthumbnail"]:
        print(
            printable(f"{report['file']}: not a HyperThumbnail (a plain image, {w}x{h}, {report['file_size']} bytes)")
        )
        for note in report.get("notes", []):  # e.g. why a marked file is shown as a plain image
            print(printable(f"  note: {note}"))
        return EXIT_OK
    pw, ph = report["preview_size"]
    lines = [
        f"{report['file']}: HyperThumbnail v{report['format_version']}",
        f"  full size      {w}x{h} (scale x{report['scale']}, thumbnail {pw}x{ph})",
        f"  file size      {report['file_size']} bytes, {report['bits_per_pixel']:.4f} bits per full-size pixel",
        f"  model          {report['model_id']} (weights {report['weights_sha256'][:12]})",
        f"  rate           {report['rate']}",
        *([f"  payload        {report['payload_bytes']} bytes" + (f" (unusable: {report['payload_problem']})"
                                                                if report.get("payload_problem") else "")]
          if report.get("payload_bytes") is not None else []),
        *[f"  {'bytes of' if i == 0 else '':<14} {name:<11} {size:>9} ({size * 8 / (w * h):.4f} bpp)"
          for i, (name, size) in enumerate(report.get("layers", {}).items())],
        f"  orientation    {report['orientation']}",
        "  luma table (natural order)", *_table_lines(report["luma_table"]),
        "  chroma table (natural order)", *_table_lines(report["chroma_table"]),
    ]  # fmt: skip
    print("\n".join(printable(line) for line in lines))  # a ModelId with line breaks forges no lines
    return EXIT_OK


def cmd_selfcheck(args) -> int:
    """Figures for the codec's assumptions; uses the installed weights, else a random model."""
    import torch

    from app.codec.engine.selfcheck import run_selfcheck
    from app.codec.engine.weights import find_weights, load_model
    from app.codec.nets.model import HyperThumbnailModel

    try:
        weights = find_weights(args.weights)
        model, source = load_model(weights), f"weights {weights.model_id}"
    except CodecError:
        torch.manual_seed(0)
        model, source = HyperThumbnailModel().eval(), "randomly initialised default architecture"
        for layer in (model.encoder.tail, model.decoder.tail):
            torch.nn.init.normal_(layer.weight, std=0.02)  # so tiling is checked on every path
    report = run_selfcheck(model)
    report["model"] = source
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:32s} {value:.4f}" if isinstance(value, float) else f"{key:32s} {value}")
    return EXIT_OK if report["ok"] else EXIT_ERROR


def cmd_eval(args) -> int:
    """Rate-distortion of every method on a folder: files in --out, the table on stdout."""
    from app.codec.api import parse_rate
    from app.evaluation.report import print_summary, write_report
    from app.evaluation.runner import evaluate_folder
    from app.evaluation.summary import summarise

    rates = sorted({parse_rate(r) for r in args.rates.split(",")}) if args.rates else None
    evaluation = evaluate_folder(
        Path(args.folder),
        weights_dir=args.weights,
        device=args.device,
        crop=args.crop,
        rates=rates,
        limit=args.limit,
        ablation=args.ablation,
        model_id=args.model,
        effort=args.effort,
    )
    summary = summarise(evaluation)
    paths = write_report(evaluation, summary, Path(args.out))
    print_summary(summary, sys.stdout)
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    if not evaluation.weights["trained"]:
        print(
            f"hyperthumb: warning: weights {evaluation.weights['model_id']!r} are untrained (for tests only)",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_compare(args) -> int:
    """One region as each method gives it back, at matched bpp: a PNG, one line per panel."""
    from app.codec.api import parse_rate
    from app.evaluation.compare import (
        MAX_ZOOM,
        compare_photo,
        describe,
        parse_region,
        render,
        write_png,
    )

    region = parse_region(args.region)
    rate = parse_rate(args.rate)
    if not 1 <= args.zoom <= MAX_ZOOM:
        raise CodecError(f"zoom must be between 1 and {MAX_ZOOM}, got {args.zoom}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":  # before the coding, not after
        raise CodecError(f"output must be a .png file, not {out.name}")
    result = compare_photo(Path(args.photo), region, rate=rate, weights_dir=args.weights, device=args.device)
    image = render(result.panels, args.zoom)
    write_png(image, out, Path(args.photo))
    for panel in result.panels:
        print(describe(panel))
    for name, reason in result.skipped.items():
        print(printable(f"hyperthumb: note: no {name} panel: {reason}"), file=sys.stderr)
    print(f"wrote {out} ({image.width}x{image.height})")
    if not result.weights_trained:
        print(
            printable(f"hyperthumb: warning: weights {result.weights_id!r} are untrained (for tests only)"),
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_bench(args) -> int:
    from app.bench import (
        SCALING_WIDTHS,
        BenchSettings,
        format_report,
        run_bench,
        run_scaling,
    )
    from app.codec.api import Codec

    sizes = [s.strip().upper() for s in args.scaling.split(",")] if args.scaling else []
    unknown = [s for s in sizes if s not in SCALING_WIDTHS]
    if unknown:
        raise CodecError(f"unknown scaling size {unknown[0]!r}; choose from {', '.join(SCALING_WIDTHS)}")
    settings = BenchSettings(
        width=args.size[0],
        height=args.size[1],
        repeat=args.repeat,
        warmup=max(0, args.warmup),
        tile=args.tile,
        model_id=args.model,
    )
    codec = Codec(args.weights, args.device, args.tile)
    log = (lambda text: None) if args.json else (lambda text: print(f"bench: {text}", file=sys.stderr))
    from app.codec.engine.runtime import requested_runtime

    runtimes = [requested_runtime(n) for n in args.runtime.split(",")] if args.runtime else None
    if args.quality_check:
        from app.bench import quality_check

        folder = Path(args.quality_check)
        if not folder.is_dir():
            raise CodecError(f"not a folder: {folder}")
        result = quality_check(folder, codec, log=log, runtimes=runtimes, model_id=args.model)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"PSNR cost vs torch-fp32 on {len(result['images'])} photos ({result['device']}):")
            for name, row in result["paths"].items():
                print(f"  {name:<18} mean {row['mean_loss_db']:+.4f} dB, max {row['max_loss_db']:+.4f} dB")
        return EXIT_OK
    report = run_bench(settings, codec, log, runtimes)
    scaling = run_scaling(settings, codec, sizes, log, runtimes[0] if runtimes else "auto") if sizes else None
    if args.json:
        print(json.dumps({**report, "scaling": scaling}, indent=2))
    else:
        print(format_report(report, scaling))
    return EXIT_OK


COMMANDS = {"encode": cmd_encode, "convert": cmd_convert, "decode": cmd_decode, "info": cmd_info,
            "selfcheck": cmd_selfcheck, "eval": cmd_eval, "compare": cmd_compare, "bench": cmd_bench}  # fmt: skip


def _say(kind: str, message: object) -> None:
    """One line on stderr, however long or multi-line the message is."""
    text = " ".join(str(message).split())
    print(f"hyperthumb: {kind}: {shorten(text, MESSAGE_LIMIT)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say("warning", message)


def _internal_error(exc: BaseException) -> int:
    """A bug, not the user's doing: one line, and how to get the traceback for a report."""
    if os.environ.get("HYPERTHUMB_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    detail = str(exc) or "no details"
    _say(
        "error",
        f"internal error: {type(exc).__name__}: {shorten(detail, 160)} "
        "(please report it; HYPERTHUMB_DEBUG=1 shows the traceback)",
    )
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    from app.codec.files.atomic import Terminated, terminate_like_interrupt

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with terminate_like_interrupt():
            return COMMANDS[args.command](args)
    except CodecError as exc:
        _say("error", exc)
        return EXIT_ERROR
    except Terminated:
        print("hyperthumb: terminated; no output was written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("\nhyperthumb: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `hyperthumb info x.jpg | head`: the reader left; not an error
        sys.stdout = None
        return EXIT_OK
    except OSError as exc:  # disk full, permission denied on the output folder, ...
        _say("error", user_message(exc, "hyperthumb"))
        return EXIT_ERROR
    except MemoryError as exc:
        _say("error", user_message(exc, "this image") + " (a smaller --tile or a --region needs less)")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 -- the promise: no traceback, ever
        return _internal_error(exc)
    finally:
        warnings.showwarning = shown
