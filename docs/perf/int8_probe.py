"""int8 post-training quantisation of the default decoder, measured (docs/PERFORMANCE.md, "int8").

    python docs/perf/int8_probe.py [--calibration 12] [--out /tmp/int8] [VARIANT ...]

Exports the default weights' base decoder as an ONNX graph without the per-file bias offsets
(as graph inputs they keep the biases out of the integer convolutions), quantises it with ONNX
Runtime's static QDQ tools, calibrated on crops of training photos encoded at LOW..HIGH, and
reports for each variant its agreement with PyTorch float32 and its PSNR cost on crops of the
validation photos, and the time of a 592x592 thumbnail tile. Variants: ``all`` (every
convolution), ``chain`` (convolutions, additions, ReLUs; the output's path in float), and
``chain-x:NODE[,NODE]`` (also NODE in float). Needs the ``export`` extra (onnx) and the data
(``python -m app.training data``). Not a product path: nothing here ships.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime import quantization as oq
from torch import nn

from app.codec.api import Codec
from app.codec.engine.calibration import probe_inputs, time_runtime
from app.codec.engine.runtime import build_runtime, unavailable_reason
from app.codec.files.imageio import load_image
from app.codec.nets.decoder import to_uint8_hwc
from app.training.data import cache_dir, fetch_packages, list_images

OUTPUT_PATH = ["/Conv", "/tail/Conv", "/Add_1", "/Add"]  # bilinear base, tail, final sum, table code
VARIANTS = {
    "all": dict(op_types_to_quantize=["Conv"], nodes_to_exclude=["/Conv"]),
    "chain": dict(op_types_to_quantize=["Conv", "Add", "Relu", "Concat", "DepthToSpace"], nodes_to_exclude=OUTPUT_PATH),
}


class _BaseDecoder(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, lr, dequantized, tables):
        return to_uint8_hwc(self.decoder.phases(lr, dequantized, tables), 4)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 2, 1, 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="*", default=["all", "chain", "chain-x:/pixel_in/Conv"])
    parser.add_argument("--calibration", type=int, default=12, help="training crops to calibrate on")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="int8-")))
    args = parser.parse_args()
    torch.set_num_threads(2)
    codec = Codec()
    model = codec.model(codec.weights())
    images = list_images(fetch_packages(cache_dir(), log=lambda text: None))
    train = [i for i in images if i.is_photo and not i.is_validation]
    validation = [i for i in images if i.is_validation]

    def crops(sources, count, seed, side=768):
        rng, out = random.Random(seed), []
        for k, image in enumerate(rng.sample(sources, count)):
            photo = load_image(image.path)
            h, w = photo.rgb.shape[:2]
            if min(h, w) < side:
                continue
            y, x = rng.randrange(0, h - side + 1), rng.randrange(0, w - side + 1)
            photo.rgb = np.ascontiguousarray(photo.rgb[y : y + side, x : x + side])
            file = args.out / "crop.hyper.jpg"
            codec.encode_photo(photo, file, rate=(0.0, 0.2, 0.4)[k % 3], effort="fast", force=True)
            r = codec.reconstructor(file, detail=False)
            out.append(
                (photo.rgb, {"lr": r.lr.numpy(), "dequantized": r.dequantized.numpy(), "tables": r.tables.numpy()})
            )
        return out

    calibration, test = crops(train, args.calibration, 1), crops(validation, len(validation), 100)
    graph = args.out / "base.onnx"
    side = 64 + 2 * model.config.decoder.margin()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _BaseDecoder(model.decoder).eval(),
            (torch.rand(1, 3, side, side), torch.randn(1, 3, 64, side // 8, side // 8), torch.full((1, 128), 8.0)),
            str(graph), dynamo=False, opset_version=17, input_names=["lr", "dequantized", "tables"],
            output_names=["hr"], dynamic_axes={"lr": {2: "h", 3: "w"}, "dequantized": {3: "hb", 4: "wb"}},
        )  # fmt: skip
    prepared = args.out / "base.pre.onnx"
    oq.shape_inference.quant_pre_process(str(graph), str(prepared), skip_symbolic_shape=True)
    with torch.inference_mode():
        reference = [
            to_uint8_hwc(model.decoder.phases(*(torch.from_numpy(f[k]) for k in ("lr", "dequantized", "tables"))), 4)[0].numpy()
            for _, f in test
        ]  # fmt: skip
    probe = dict(zip(("lr", "dequantized", "tables"), (t.numpy() for t in probe_inputs(592, torch.device("cpu")))))

    def report(name, session):
        agreement, cost = [], []
        for (photo, feeds), ref in zip(test, reference):
            out = session.run(None, feeds)[0][0]
            agreement.append(_psnr(out, ref))
            cost.append(_psnr(ref, photo) - _psnr(out, photo))
        session.run(None, probe)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            session.run(None, probe)
            times.append(time.perf_counter() - start)
        print(f"{name}: agreement {np.mean(agreement):.2f} dB (min {np.min(agreement):.2f}); PSNR cost mean "
              f"{np.mean(cost):.4f} dB, worst {np.max(cost):.4f} dB; 592x592 tile {1000 * statistics.median(times):.0f} ms",
              flush=True)  # fmt: skip

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.items = iter([feeds for _, feeds in calibration])

        def get_next(self):
            return next(self.items, None)

    for name in ("torch-bf16", "torch-fp32-fused"):  # the product's own CPU paths, on the same tile
        if unavailable_reason(name, codec.weights()) is None:
            runtime = build_runtime(name, model, codec.weights())
            tile_ms, _ = time_runtime(runtime, probe_inputs(592, runtime.device), repeat=5)
            print(f"{name}: 592x592 tile {tile_ms:.0f} ms", flush=True)
    report("onnx float32", _session(graph))
    for variant in args.variants:
        base, _, extra = variant.partition("-x:")
        options = dict(VARIANTS[base])
        options["nodes_to_exclude"] = options["nodes_to_exclude"] + [n for n in extra.split(",") if n]
        path = args.out / f"{variant.replace('/', '_').replace(':', '_').replace(',', '+')}.onnx"
        oq.quantize_static(str(prepared), str(path), Reader(), quant_format=oq.QuantFormat.QDQ, per_channel=True,
                           weight_type=oq.QuantType.QInt8, activation_type=oq.QuantType.QUInt8, **options)  # fmt: skip
        report(f"int8 {variant}", _session(path))


if __name__ == "__main__":
    main()
