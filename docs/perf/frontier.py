"""The decoder frontier (issue 19): what each trained decoder costs against what it keeps.

    python docs/perf/frontier.py --cost docs/perf/decoder_cost_epyc_avx2.json \
        --reference docs/model_eval/v5 \
        --point "v5 48x3=default (v5)=docs/model_eval/v5" --point "v8-lean 32x2=32x2=docs/model_eval/v8-lean" \
        [--rates 0,0.2,0.4,0.55,0.7,0.85,1] [--plot docs/perf/frontier_epyc_avx2.png] [--json FILE]

x: the viewport's decode time (1920x1080 at 100%, base and with the detail layer's latent ready)
of the point's decoder shape, from ``decoder_cost.py``'s JSON on one CPU; y: BD-PSNR of the
point's ``hyperthumb eval`` run against the reference run over the same photos and rates (the
eval's own BD code, via ``docs/model_eval/effort_bd.py``), and each run's BD against
full-resolution AVIF over 0.05-0.5 bpp. Both eval runs must use the same photos, crop and rates.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np

from app.evaluation.plot import draw_rd_plot
from app.evaluation.summary import AVIF, DETAIL_RANGE, HYPERTHUMBNAIL

_spec = importlib.util.spec_from_file_location("effort_bd", Path(__file__).parents[1] / "model_eval" / "effort_bd.py")
effort_bd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(effort_bd)


def bd_against(reference_run: Path, run: Path, rates: set[float]) -> tuple[float | None, float | None]:
    """(BD-PSNR of ``run`` against ``reference_run`` on their averaged curves, mean over photos)."""
    reference, table = effort_bd.load(reference_run, rates), effort_bd.load(run, rates)
    images = sorted(set(table) & set(reference))
    if not images:
        raise SystemExit(f"{run}: no photos in common with the reference run")
    per_photo = [effort_bd.bd(reference[i][HYPERTHUMBNAIL], table[i][HYPERTHUMBNAIL]) for i in images]
    per_photo = [v for v in per_photo if v is not None]
    overall = effort_bd.bd(effort_bd.averaged(reference, HYPERTHUMBNAIL), effort_bd.averaged(table, HYPERTHUMBNAIL))
    return overall, (float(np.mean(per_photo)) if per_photo else None)


def point(spec: str, costs: dict, reference: Path, rates: set[float], base_top: float) -> dict:
    """``LABEL=VARIANT=EVAL_DIR`` -> its costs and BD figures: over the thumbnail's own rates
    (<= ``base_top``: what the base decode gives) and over the detail layer's (above it)."""
    label, variant, run = spec.split("=", 2)
    cost = next((v for v in costs["variants"] if v["variant"] == variant), None)
    if cost is None:
        raise SystemExit(f"no variant {variant!r} in the cost JSON")
    base = bd_against(reference, Path(run), {r for r in rates if r <= base_top})
    layer = bd_against(reference, Path(run), {r for r in rates if r > base_top})
    table = effort_bd.load(Path(run), rates)
    return {
        "label": label,
        "variant": variant,
        "eval": run,
        "viewport_ms": cost["viewport_ms"],
        "macs_per_thumbnail_pixel": cost["macs_per_thumbnail_pixel"],
        "bd_vs_reference_db": {"base": base[0], "with_layer": layer[0]},
        "bd_vs_reference_mean_of_photos_db": {"base": base[1], "with_layer": layer[1]},
        "bd_vs_avif_db": effort_bd.bd(
            effort_bd.averaged(table, AVIF), effort_bd.averaged(table, HYPERTHUMBNAIL), DETAIL_RANGE
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", type=Path, required=True, help="decoder_cost.py --json output")
    parser.add_argument("--reference", type=Path, required=True, help="the eval run the BD figures are against")
    parser.add_argument("--point", action="append", required=True, help="LABEL=VARIANT=EVAL_DIR")
    parser.add_argument("--rates", default="0,0.2,0.4,0.55,0.7,0.85,1")
    parser.add_argument("--base-top", type=float, default=0.4, help="the highest rate without the layer (v5: HIGH)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rates = {round(float(r), 4) for r in args.rates.split(",")}
    costs = json.loads(args.cost.read_text())
    points = [point(spec, costs, args.reference, rates, args.base_top) for spec in args.point]
    print(
        f"{costs['device']}, {costs['runtime']}, viewport {costs['viewport'][0]}x{costs['viewport'][1]}; BD against {args.reference}"
    )
    print(
        f"{'decoder':24s} {'base ms':>8s} {'BD base':>8s} {'layer ms':>9s} {'BD layer':>9s} {'vs AVIF':>8s}   (BD: averaged curves / mean of photos)"
    )
    cell = lambda v: "   n/a" if v is None else f"{v:+6.2f}"
    for p in points:
        ms, bd, each = p["viewport_ms"], p["bd_vs_reference_db"], p["bd_vs_reference_mean_of_photos_db"]
        print(f"{p['label']:24s} {ms['base']:8.0f} {cell(bd['base'])}/{cell(each['base'])} {ms['with_layer']:6.0f} "
              f"{cell(bd['with_layer'])}/{cell(each['with_layer'])} {cell(p['bd_vs_avif_db'])}")  # fmt: skip
    if args.plot:
        curves = {
            kind: sorted((p["viewport_ms"][key], p["bd_vs_reference_db"][key]) for p in points if p["bd_vs_reference_db"][key] is not None)
            for kind, key in (("base (thumbnail rates)", "base"), ("with the detail layer (layer rates)", "with_layer"))
        }  # fmt: skip
        labels = {}  # every point named: "<label>, layer" and "<label>, base"
        for p in points:
            for key in ("with_layer", "base"):
                if p["bd_vs_reference_db"][key] is not None:
                    name = f"{p['label']}, {'layer' if key == 'with_layer' else 'base'}"
                    labels[name] = (p["viewport_ms"][key], p["bd_vs_reference_db"][key])
        title = f"Decoder frontier: {costs['device']}, {costs['runtime']}"
        image = draw_rd_plot(curves, title, labels, x_label="viewport decode, 1920x1080 (ms, log scale)",
                             y_label=f"BD-PSNR vs {args.reference.name} (dB)")  # fmt: skip
        image.save(args.plot)
    if args.json:
        args.json.write_text(
            json.dumps({"cost": str(args.cost), "reference": str(args.reference), "points": points}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
