"""Decoder runtimes: the same trained decoder run by different engines, and the choice among them.

A runtime takes the decoder's three inputs (thumbnail pixels 0..1 [1, 3, h, w], de-quantized
coefficients [1, 3, 64, h/8, w/8], tables [1, 128]) as float32 tensors on its device and returns
the full-resolution photo there as uint8 [4h, 4w, 3]; the network inside may run in lower precision. Which engine is fastest depends on the machine:

    torch-fp32       PyTorch, float32, any CPU: the reference every other path is checked against
    torch-bf16       PyTorch, bfloat16 weights + channels_last: only CPUs with native bf16 (AVX512-BF16, AMX)
    torch-fp32-fused PyTorch, float32 + channels_last, oneDNN's fused convolutions: any CPU (the fast path without bf16)
    onnx-fp32        ONNX Runtime's CPU engine on the decoder's committed ONNX graph: every CPU
    torch-cuda-fp16  PyTorch on an NVIDIA GPU, float16
    torch-mps        PyTorch on Apple's Metal GPU, float32

``auto`` lets a short calibration (``calibration``) pick the fastest path that agrees with
torch-fp32; ``--runtime NAME`` or ``HYPERTHUMB_RUNTIME`` pick one by name.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.codec.engine import fused
from app.codec.engine.allocator import keep_freed_memory
from app.codec.engine.weights import WeightsInfo, sha256_file
from app.codec.errors import CodecError, WeightsError
from app.codec.nets.decoder import to_uint8_hwc
from app.codec.nets.model import HyperThumbnailModel

AUTO = "auto"
RUNTIME_ENV = "HYPERTHUMB_RUNTIME"
FUSED_ENV = "HYPERTHUMB_FUSED"  # "0": run every runtime op by op (to measure what fusion gives)


@dataclass(frozen=True)
class RuntimeSpec:
    """What a runtime is: its engine, device type and arithmetic."""

    name: str
    engine: str  # "torch" or "onnx"
    device_type: str  # "cpu", "cuda" or "mps"
    dtype: torch.dtype = torch.float32  # the network's weights (its inputs are always float32)
    channels_last: bool = False
    fused: bool = False  # the pixel branch through oneDNN's fused convolutions (``fused``), where available
    summary: str = ""


SPECS: dict[str, RuntimeSpec] = {
    spec.name: spec
    for spec in (
        RuntimeSpec("torch-fp32", "torch", "cpu", summary="PyTorch float32 (the reference)"),
        # The reference's arithmetic in oneDNN's preferred layout with fused convolutions: on a CPU
        # without native bf16 the fast path (a 592-px tile 2.2x faster than the reference on a 2-core
        # AVX2 EPYC, outputs within float32 rounding of it; docs/PERFORMANCE.md)
        RuntimeSpec(
            "torch-fp32-fused",
            "torch",
            "cpu",
            channels_last=True,
            fused=True,
            summary="PyTorch float32, channels_last, fused convolutions (any CPU)",
        ),
        RuntimeSpec(
            "torch-bf16",
            "torch",
            "cpu",
            dtype=torch.bfloat16,
            channels_last=True,
            fused=True,
            summary="PyTorch bfloat16, channels_last, fused convolutions (native bf16 CPUs)",
        ),
        RuntimeSpec("onnx-fp32", "onnx", "cpu", summary="ONNX Runtime CPU, float32"),
        RuntimeSpec("torch-cuda-fp16", "torch", "cuda", dtype=torch.float16, summary="PyTorch CUDA float16"),
        RuntimeSpec("torch-mps", "torch", "mps", summary="PyTorch Apple MPS float32"),
    )
}
RUNTIME_NAMES = tuple(SPECS)
REFERENCE = "torch-fp32"


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86 AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than float32, so the bf16 path is not offered. Linux reads the CPU's
    flags; other systems trust oneDNN's own check (calibration still has to find it fastest)."""
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def onnxruntime_module():
    """``onnxruntime``, or None where it is not installed (the ONNX path is then unavailable)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def onnx_entry(info: WeightsInfo, detail: bool = False) -> tuple[Path, str] | None:
    """(path, sha256) of these weights' ONNX decoder graph as the manifest lists it, or None;
    ``detail``: the graph that also reads a detail latent (weights with a detail layer)."""
    entry = info.entry.get("onnx")
    file_key, sha_key = ("detail_file", "detail_sha256") if detail else ("file", "sha256")
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get(file_key), str)
        or not isinstance(entry.get(sha_key), str)
    ):
        return None
    return info.path.parent / entry[file_key], entry[sha_key].lower()


def unavailable_reason(name: str, info: WeightsInfo | None = None) -> str | None:
    """None when runtime ``name`` can run here (with these weights), else why not, in a sentence."""
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown runtime {name!r}; choose auto or one of {', '.join(RUNTIME_NAMES)}"
    if spec.device_type == "cuda" and not torch.cuda.is_available():
        return f"{name} needs an NVIDIA GPU with CUDA, and none is available"
    if spec.device_type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return f"{name} needs Apple Metal (MPS), which is not available"
    if spec.device_type == "cpu" and spec.dtype == torch.bfloat16 and not cpu_has_native_bf16():
        return f"{name} needs a CPU with native bfloat16 (AVX512-BF16 or AMX); this one emulates it slowly"
    if spec.engine == "onnx":
        if onnxruntime_module() is None:
            return f"{name} needs the onnxruntime package (pip install onnxruntime)"
        if info is not None:
            graphs = [(onnx_entry(info), "")]
            if info.config.decoder.detail_latent:  # files with a layer need the graph that reads it
                graphs.append((onnx_entry(info, detail=True), " with the detail layer"))
            for found, what in graphs:
                if found is None:
                    return f"{name}: the weights {info.model_id!r} have no ONNX decoder graph{what} in their manifest"
                if not found[0].is_file():
                    return f"{name}: the ONNX decoder graph {found[0].name} is missing"
    return None


def available_runtimes(info: WeightsInfo | None = None, device_type: str | None = None) -> list[str]:
    """The runtimes that can run here (on ``device_type`` only, when given), reference first."""
    return [n for n in RUNTIME_NAMES if (device_type is None or SPECS[n].device_type == device_type)
            and unavailable_reason(n, info) is None]  # fmt: skip


class DecoderRuntime:
    """A decoder ready to run: ``runtime(lr, dequantized, tables) -> HR`` on ``self.device``."""

    spec: RuntimeSpec
    device: torch.device

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(
        self,
        lr: torch.Tensor,
        dequantized: torch.Tensor,
        tables: torch.Tensor,
        offsets: torch.Tensor | None = None,
        detail: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """float32 inputs of one tile (batch 1) -> its uint8 [4h, 4w, 3] photo; ``offsets``: the
        file's per-image bias offsets [N] (``adaptation``), if it carries them; ``detail``: the
        decoded detail latent of the tile [1, C, h/4, w/4] (``detail_layer``), if the file has one."""
        raise NotImplementedError


class TorchRuntime(DecoderRuntime):
    """PyTorch on any device; its own copy of the decoder, in the spec's dtype and memory layout."""

    def __init__(self, spec: RuntimeSpec, model: HyperThumbnailModel, device: torch.device | None = None):
        self.spec = spec
        self.scale = model.config.scale
        self.device = device or torch.device(spec.device_type)
        decoder = model.decoder
        current = next(decoder.parameters())
        if spec.channels_last or current.dtype != spec.dtype or current.device != self.device:
            decoder = copy.deepcopy(decoder).float().to(self.device, spec.dtype)  # never alter the model's own
            if spec.channels_last:
                decoder = decoder.to(memory_format=torch.channels_last)
        self.decoder = decoder.eval()
        self.fused_branch = None
        if spec.fused and self.device.type == "cpu" and os.environ.get(FUSED_ENV) != "0" and fused.available():
            self.fused_branch = fused.FusedPixelBranch(self.decoder)

    @torch.inference_mode()
    def __call__(self, lr, dequantized, tables, offsets=None, detail=None):
        if self.spec.channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        if offsets is not None:
            offsets = offsets.to(self.device)
        if detail is not None:
            detail = detail.to(self.device)
            if self.spec.channels_last:
                detail = detail.contiguous(memory_format=torch.channels_last)
        if self.fused_branch is not None:
            try:
                return to_uint8_hwc(self.fused_branch.phases(lr, dequantized, tables, offsets, detail), self.scale)[0]
            except (RuntimeError, NotImplementedError):  # oneDNN refused this input: op by op from now on
                self.fused_branch = None
        return to_uint8_hwc(self.decoder.phases(lr, dequantized, tables, offsets, detail), self.scale)[0]


class OnnxRuntime(DecoderRuntime):
    """ONNX Runtime's CPU engine on the graph ``python -m app.training onnx`` exported from the
    weights; its sha256 is checked against the manifest before it is loaded."""

    def __init__(self, spec: RuntimeSpec, info: WeightsInfo, threads: int | None = None):
        ort = onnxruntime_module()
        found = onnx_entry(info)
        if ort is None or found is None or not found[0].is_file():
            raise WeightsError(unavailable_reason(spec.name, info) or f"{spec.name} is unavailable")
        self.spec = spec
        self.device = torch.device("cpu")
        self._threads = threads or torch.get_num_threads()
        self.session = self._load(ort, *found)
        detail_graph = onnx_entry(info, detail=True)
        self.detail_session = None if detail_graph is None else self._load(ort, *detail_graph)
        self._output = self.session.get_outputs()[0].name
        offsets = next((i for i in self.session.get_inputs() if i.name == "offsets"), None)
        self._zero_offsets = None if offsets is None else np.zeros(offsets.shape, np.float32)

    def _load(self, ort, path: Path, expected: str):
        """A session on a graph whose sha256 is the manifest's."""
        if not path.is_file():
            raise WeightsError(f"the ONNX decoder graph {path.name} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise WeightsError(
                f"ONNX decoder graph {path.name} fails its sha256 check (expected {expected[:12]}, got {actual[:12]})"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused initializers are noise to users
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 -- any unloadable graph is a weights problem for the user
            raise WeightsError(f"ONNX decoder graph {path.name} cannot be loaded: {exc}") from None

    def __call__(self, lr, dequantized, tables, offsets=None, detail=None):
        session = self.session
        if detail is not None:
            if self.detail_session is None:
                raise CodecError(
                    "these weights have no ONNX decoder graph with a detail-layer input: use a torch runtime"
                )
            session = self.detail_session
        feeds = {
            "lr": lr.float().contiguous().numpy(),
            "dequantized": dequantized.float().contiguous().numpy(),
            "tables": tables.float().contiguous().numpy(),
        }
        if self._zero_offsets is not None:
            feeds["offsets"] = self._zero_offsets if offsets is None else offsets.float().contiguous().numpy()
        elif offsets is not None:
            raise CodecError(
                "this ONNX decoder graph predates per-file adaptation: re-export it "
                "(python -m app.training onnx) or use a torch runtime"
            )
        if detail is not None:
            feeds["detail"] = detail.float().contiguous().numpy()
        return torch.from_numpy(session.run([self._output], feeds)[0][0])


def build_runtime(name: str, model: HyperThumbnailModel, info: WeightsInfo) -> DecoderRuntime:
    """Runtime ``name`` for these weights; ``CodecError`` saying why when it cannot run here."""
    reason = unavailable_reason(name, info)
    if reason is not None:
        raise CodecError(reason)
    spec = SPECS[name]
    if spec.device_type == "cpu":
        keep_freed_memory()
    if spec.engine == "onnx":
        return OnnxRuntime(spec, info)
    return TorchRuntime(spec, model)


def requested_runtime(name: str | None = None) -> str:
    """The runtime asked for: the argument, else ``HYPERTHUMB_RUNTIME``, else auto; checked by name."""
    name = (name or os.environ.get(RUNTIME_ENV) or AUTO).strip().lower()
    if name != AUTO and name not in SPECS:
        raise CodecError(f"unknown runtime {name!r}; choose auto or one of {', '.join(RUNTIME_NAMES)}")
    return name
