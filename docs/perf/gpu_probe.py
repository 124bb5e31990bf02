"""The decoder network on a CUDA GPU: eager float16 (what `torch-cuda-fp16` runs) against
torch.compile of the same network, for the 6K photo and the 1920x1080 viewport.

    python docs/perf/gpu_probe.py [--repeat 20] [--json]

Run by ``docs/perf/gpu_check.sh run`` on a machine lent by the device tool (`hyperthumb bench
--device cuda` times the product's own paths; this adds what compiling would buy). The inputs are
the decoder's own: a thumbnail, its de-quantized coefficients and tables, at the sizes a 6144x4096
photo (its 1536x1024 thumbnail in one piece) and a 1920x1080 viewport (480x272 + the decoder's margin)
give. Times are CUDA-event medians after warm-up; compile time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from app.codec.api import Codec

SIZES = {"6K network": (1024, 1536), "viewport": (272, 480)}  # thumbnail pixels, before the margin


def _time(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_probe: no CUDA device here")
    codec = Codec(device="cuda")
    info = codec.weights()
    decoder = codec.model(info).decoder.to("cuda", torch.float16).eval()
    report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "weights": info.model_id, "rows": []}
    compiled = torch.compile(decoder.phases, mode="max-autotune-no-cudagraphs", dynamic=False)
    margin = codec.model(info).config.decoder.margin()
    for name, (h, w) in SIZES.items():
        h, w = (h + 2 * margin, w + 2 * margin) if name == "viewport" else (h, w)
        torch.manual_seed(0)
        lr = torch.rand(1, 3, h, w, device="cuda")
        dequantized = torch.randn(1, 3, 64, h // 8, w // 8, device="cuda") * 8
        tables = torch.randint(1, 60, (1, 128), device="cuda")
        inputs = (lr, dequantized, tables)
        with torch.inference_mode():
            eager_ms = _time(lambda x=inputs: decoder.phases(*x), args.repeat)
            started = time.perf_counter()
            compiled(*inputs)
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - started
            compiled_ms = _time(lambda x=inputs: compiled(*x), args.repeat)
            diff = (compiled(*inputs) - decoder.phases(*inputs)).abs().max().item()
        row = {"size": name, "lr": [w, h], "eager_fp16_ms": eager_ms, "compiled_fp16_ms": compiled_ms,
               "compile_s": compile_s, "max_abs_diff": diff}  # fmt: skip
        report["rows"].append(row)
        if not args.json:
            print(f"{name:<12} eager {eager_ms:7.2f} ms  compiled {compiled_ms:7.2f} ms  (compile {compile_s:.0f} s)")
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
