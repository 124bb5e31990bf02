"""``python -m app.training onnx``: the decoder as an ONNX graph, for ONNX Runtime's fast CPU path.

The graph is made from the weights once, checked against PyTorch, committed next to them and
listed in the manifest entry with its sha256 (``"onnx": {"file", "sha256", ...}``). Committing it
(1.5 MB) instead of building it on the user's machine means users need only the small
``onnxruntime`` package, not the exporter's ``onnx``; and what runs is byte for byte what was
checked here. The thumbnail's tables and the file's bias offsets (per-image adaptation; zeros
for a file without them) are graph inputs, like the pixels and coefficients: nothing of a file
is baked into the graph. Needs ``pip install onnx`` (the ``export`` extra).

Weights with a detail layer get a second graph, ``<model id>.decoder-detail.onnx``, with the decoded
latent as a fifth input (``"detail_file"`` and ``"detail_sha256"`` in the same entry): the decoder
without a latent skips its detail branch rather than feeding it zeros, so it is another graph,
not an optional input.
"""

from __future__ import annotations

import io
import json
import warnings

import torch
from torch import nn

from app.codec.engine.runtime import SPECS, OnnxRuntime, onnxruntime_module
from app.codec.engine.weights import (
    MANIFEST_NAME,
    WeightsInfo,
    find_weights,
    load_model,
    read_manifest,
    sha256_file,
)
from app.codec.errors import WeightsError
from app.codec.files.atomic import atomic_write_bytes
from app.codec.nets.decoder import to_uint8_hwc

OPSET = 17
INPUTS = ("lr", "dequantized", "tables", "offsets")
DETAIL_INPUTS = (*INPUTS, "detail")
MAX_DIFFERENCE = 1  # grey level: ONNX Runtime vs PyTorch, both float32, may round a .5 the other way


class _DecoderGraph(nn.Module):
    """What the runtimes compute: float32 inputs -> uint8 [1, 4h, 4w, 3] photo."""

    def __init__(self, decoder: nn.Module, scale: int):
        super().__init__()
        self.decoder, self.scale = decoder, scale

    def forward(self, lr, dequantized, tables, offsets, detail=None):
        return to_uint8_hwc(self.decoder.phases(lr, dequantized, tables, offsets, detail), self.scale)


def export_decoder_bytes(info: WeightsInfo, detail: bool = False) -> bytes:
    """The decoder of these weights as ONNX bytes (deterministic for the same weights and torch);
    ``detail``: the graph that also reads a decoded detail latent."""
    try:
        import onnx  # noqa: F401 -- torch's exporter needs it; say so plainly
    except ImportError:
        raise WeightsError("exporting ONNX needs the onnx package: pip install onnx") from None
    model = load_model(info)
    side = 64 + 2 * info.config.decoder.margin()
    inputs = (
        torch.rand(1, 3, side, side),
        torch.randn(1, 3, 64, side // 8, side // 8),
        torch.full((1, 128), 8.0),
        torch.zeros(model.decoder.offsets_size()),
    )
    names, axes = list(INPUTS), {"lr": {2: "h", 3: "w"}, "dequantized": {3: "hb", 4: "wb"}, "hr": {1: "H", 2: "W"}}
    if detail:
        inputs += (torch.randn(1, model.decoder.detail_latent, side // 4, side // 4),)
        names, axes = list(DETAIL_INPUTS), {**axes, "detail": {2: "hd", 3: "wd"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces that it is legacy
        torch.onnx.export(
            _DecoderGraph(model.decoder, info.config.scale).eval(),
            inputs,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=["hr"],
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def max_difference(info: WeightsInfo, runtime: OnnxRuntime, side: int = 200, detail: bool = False) -> float:
    """Largest |ONNX Runtime - PyTorch| in grey levels on a random non-square input (``detail``:
    with a random detail latent, through the detail graph)."""
    model = load_model(info)
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, side, side + 48, generator=g)
    dq = torch.randn(1, 3, 64, side // 8, (side + 48) // 8, generator=g) * 30
    tables = torch.randint(1, 80, (1, 128), generator=g).float()
    offsets = torch.randn(model.decoder.offsets_size(), generator=g) * 0.01
    latent = None
    if detail:
        latent = torch.randn(1, model.decoder.detail_latent, side // 4, (side + 48) // 4, generator=g)
    with torch.inference_mode():
        expected = to_uint8_hwc(model.decoder.phases(lr, dq, tables, offsets, latent), info.config.scale)[0]
    return float((runtime(lr, dq, tables, offsets, latent).int() - expected.int()).abs().max())


def export_onnx(weights_dir=None, model_id: str | None = None, log=print) -> dict:
    """Write ``<model id>.decoder.onnx`` beside the weights, check it, and list it in the manifest."""
    if onnxruntime_module() is None:
        raise WeightsError("checking the exported graph needs onnxruntime: pip install onnxruntime")
    info = find_weights(weights_dir, model_id=model_id)
    data = export_decoder_bytes(info)
    path = info.path.parent / f"{info.model_id}.decoder.onnx"
    atomic_write_bytes(path, data, force=True)
    entry = {"file": path.name, "sha256": sha256_file(path), "opset": OPSET, "inputs": list(INPUTS),
             "exported_with": f"torch {torch.__version__}"}  # fmt: skip
    written = [path]
    if info.config.decoder.detail_latent:
        detail_path = info.path.parent / f"{info.model_id}.decoder-detail.onnx"
        atomic_write_bytes(detail_path, export_decoder_bytes(info, detail=True), force=True)
        entry.update(detail_file=detail_path.name, detail_sha256=sha256_file(detail_path))
        written.append(detail_path)
    checked = WeightsInfo(
        info.model_id, info.path, info.sha256, info.config, info.trained, {**info.entry, "onnx": entry}
    )
    runtime = OnnxRuntime(SPECS["onnx-fp32"], checked)
    difference = max(max_difference(checked, runtime, detail=d) for d in [False, *([True] if len(written) > 1 else [])])
    if difference > MAX_DIFFERENCE:
        for p in written:
            p.unlink()
        raise WeightsError(
            f"the exported graph differs from PyTorch by {difference:.2e} (> {MAX_DIFFERENCE}): not installed"
        )
    entry["max_difference_vs_torch"] = float(f"{difference:.3g}")
    manifest = read_manifest(info.path.parent)
    manifest["models"][info.model_id]["onnx"] = entry
    atomic_write_bytes(info.path.parent / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)
    for p in written:
        log(f"{p}: {p.stat().st_size} bytes, sha256 {sha256_file(p)[:12]}")
    log(f"max difference vs torch {difference:.2e} grey levels")
    return entry
