"""BD-PSNR of one ``hyperthumb eval`` run's HyperThumbnail curve against another's, on the same
photos and rates: what an export setting (e.g. ``--effort best``) changes. Also each run's BD
against full-resolution AVIF over 0.05-0.5 bpp (the eval's own measure), restricted to those rates.

    python docs/model_eval/effort_bd.py docs/model_eval/v5 docs/model_eval/v5-best [--rates 0.4,0.55,0.7,0.85,1]

Reads only the two runs' results.csv; uses the eval's own BD code (``app.evaluation``).
"""

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from app.evaluation.bjontegaard import bd_psnr
from app.evaluation.summary import AVIF, DETAIL_RANGE, HYPERTHUMBNAIL


def load(run: Path, rates: set[float]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """image -> method -> [(bpp, psnr)], the HyperThumbnail rows only at ``rates``."""
    table: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    with open(run / "results.csv", newline="") as f:
        for row in csv.DictReader(f):
            method = row["method"]
            if method == HYPERTHUMBNAIL and round(float(row["setting"]), 4) not in rates:
                continue
            if method in (HYPERTHUMBNAIL, AVIF) and row["psnr_rgb"] not in ("", "inf"):
                table[row["image"]][method].append((float(row["bpp"]), float(row["psnr_rgb"])))
    return table


def bd(anchor, test, within=None):
    anchor, test = sorted(set(anchor)), sorted(set(test))
    return bd_psnr([a[0] for a in anchor], [a[1] for a in anchor], [t[0] for t in test], [t[1] for t in test], within)


def averaged(table, method):
    """The curve of averaged points (as the eval averages: per setting, in the runs' row order)."""
    curves = [sorted(methods[method]) for methods in table.values()]
    n = min(len(c) for c in curves)
    return [(float(np.mean([c[i][0] for c in curves])), float(np.mean([c[i][1] for c in curves]))) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rates", default="0.4,0.55,0.7,0.85,1")
    args = parser.parse_args()
    rates = {round(float(r), 4) for r in args.rates.split(",")}
    before, after = load(args.before, rates), load(args.after, rates)
    images = sorted(set(before) & set(after))
    print(f"{len(images)} photos, HyperThumbnail rates {sorted(rates)}")
    print(f"{'photo':28s} {'after vs before':>16s} {'before vs AVIF':>15s} {'after vs AVIF':>14s}")
    gains, vb, va = [], [], []
    for image in images:
        g = bd(before[image][HYPERTHUMBNAIL], after[image][HYPERTHUMBNAIL])
        b = bd(before[image][AVIF], before[image][HYPERTHUMBNAIL], DETAIL_RANGE)
        a = bd(after[image][AVIF], after[image][HYPERTHUMBNAIL], DETAIL_RANGE)
        gains.append(g), vb.append(b), va.append(a)
        cell = lambda v: "n/a" if v is None else f"{v:+.2f} dB"
        print(f"{image:28s} {cell(g):>16s} {cell(b):>15s} {cell(a):>14s}")
    present = lambda values: [v for v in values if v is not None]
    print(
        f"{'mean of photos':28s} {np.mean(present(gains)):+15.2f}  {np.mean(present(vb)):+14.2f}  {np.mean(present(va)):+13.2f}"
    )
    overall = bd(averaged(before, HYPERTHUMBNAIL), averaged(after, HYPERTHUMBNAIL))
    vs_before = bd(averaged(before, AVIF), averaged(before, HYPERTHUMBNAIL), DETAIL_RANGE)
    vs_after = bd(averaged(after, AVIF), averaged(after, HYPERTHUMBNAIL), DETAIL_RANGE)
    print(f"{'averaged curves':28s} {overall:+15.2f}  {vs_before:+14.2f}  {vs_after:+13.2f}")
    for name, table in (("before", before), ("after", after)):
        points = ", ".join(f"{b:.3f} bpp {p:.2f} dB" for b, p in averaged(table, HYPERTHUMBNAIL))
        print(f"{name}: {points}")


if __name__ == "__main__":
    main()
