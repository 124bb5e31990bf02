"""The decoder's pixel branch with oneDNN's fused convolutions: the same network, fewer passes.

At thumbnail resolution the decoder is a chain of 48-channel convolutions with a ReLU after one
and a residual add after the other. Run op by op (PyTorch eager), each ReLU and each add is a
pass of its own over a tile's activations, and a concatenation copies them once more: profiled on
a 592x592 bf16 tile (2-core Xeon, AMX), the convolutions were ~40% of the time and those passes
most of the rest. oneDNN computes a convolution's ReLU, or its addition into an existing tensor,
while the output is still in registers ("post-ops"): ``torch.ops.mkldnn._convolution_pointwise``
(what torch.compile's CPU backend emits, callable without compiling anything). The fused chain:

- ``pixel_in`` with its ReLU;
- ``fuse`` split in two so no concatenation is made: its thumbnail half, then its frequency half
  added into that with the ReLU (and the detail features' ``detail_fuse`` added in between);
- each residual block: ``conv1`` with its ReLU, ``conv2`` added into the block's input in place;
- ``tail``, and with a detail layer its ``detail_tail`` added into it in place and the linear
  path's blocks added (its 1x1 convolution and pixel shuffle as one stride-4 transposed
  convolution: the same numbers, no shuffled copy), so that the float32 base takes one addition
  instead of three.

The frequency branch (on the 8x8 block grid, a few percent of the cost) and the detail
synthesis run as they are. Bias offsets (a file's per-image adaptation) go into the biases the
fused calls take. Results equal the op-by-op network's up to the rounding of the reduced-precision
sums (within one grey level; the runtime's check against torch-fp32 applies as to every runtime).
What it gives, and what it costs in memory (oneDNN's fused kernels hold more outside PyTorch's
allocator), is measured by ``hyperthumb bench`` with and without ``HYPERTHUMB_FUSED=0`` and by the
viewer's ``measure``: docs/PERFORMANCE.md, "v5 with fused convolutions" (bf16) and "A CPU without
native bf16" (torch-fp32-fused: the same chain in float32, channels_last, for CPUs without bf16).
Only inference on the CPU, only where the operator exists (``available``); elsewhere the runtime
runs ``Decoder.phases``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from app.codec.nets.decoder import Decoder, bilinear_phases


@functools.cache
def available() -> bool:
    """Whether this torch has oneDNN's fused convolution operators and they run here."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        x = torch.zeros(1, 2, 4, 4)
        w = torch.zeros(2, 2, 3, 3)
        op(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        torch.ops.mkldnn._convolution_pointwise_.binary(
            x, x, w, None, [1, 1], [1, 1], [1, 1], 1, "add", 1.0, None, [], ""
        )
    except Exception:  # noqa: BLE001 -- a feature probe: any failure means "run op by op"
        return False
    return torch.backends.mkldnn.is_available()


class FusedPixelBranch:
    """``Decoder.phases`` for inference on the CPU with fused convolutions (see the module's
    docstring). Holds the decoder (already in its runtime dtype and memory layout) and the two
    halves of its ``fuse`` weights."""

    def __init__(self, decoder: Decoder):
        self.decoder = decoder
        layout = (
            torch.channels_last
            if decoder.pixel_in.weight.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        c = decoder.pixel_in.out_channels
        weight = decoder.fuse.weight.detach()
        self.fuse_pixels = weight[:, :c].contiguous(memory_format=layout)
        self.fuse_frequencies = weight[:, c:].contiguous(memory_format=layout)
        self.layout = layout
        self.linear_transposed = None
        if decoder.detail_latent:  # the linear path's 1x1 conv + pixel shuffle as one stride-4 transposed conv
            w = decoder.detail_linear.weight.detach()  # [out * 16, latent, 1, 1], out channel-major
            side = round((w.shape[0] // decoder.tail.out_channels) ** 0.5)
            self.linear_transposed = w.view(decoder.tail.out_channels, side, side, -1).permute(3, 0, 1, 2).contiguous()

    @staticmethod
    def _bias(layer: torch.nn.Conv2d, offsets: dict | None, name: str) -> torch.Tensor | None:
        delta = None if offsets is None else offsets.get(name)
        if layer.bias is None or delta is None:
            return layer.bias
        return layer.bias + delta.to(layer.bias.dtype)

    @staticmethod
    def _conv(x, weight, bias, kernel: int, relu: bool = False) -> torch.Tensor:
        pad = kernel // 2
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, [pad, pad], [1, 1], [1, 1], 1, "relu" if relu else "none", [], ""
        )

    @staticmethod
    def _conv_into(acc, x, weight, bias, kernel: int, relu: bool = False) -> torch.Tensor:
        """``acc += conv(x)`` in place (then ReLU), one pass."""
        pad = kernel // 2
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            acc, x, weight, bias, [pad, pad], [1, 1], [1, 1], 1, "add", 1.0, "relu" if relu else None, [], ""
        )

    @torch.inference_mode()
    def phases(self, lr, dequantized, tables, offsets=None, detail=None) -> torch.Tensor:
        """What ``Decoder.phases`` returns for the same arguments: [B, 3 * scale^2, h, w] float32."""
        d = self.decoder
        if offsets is not None and not isinstance(offsets, dict):
            offsets = d.split_offsets(offsets)
        dtype = d.pixel_in.weight.dtype
        # The largest block first (a 24 MP decode peaked at 760-761 MB this way, 767-824 MB with it
        # made last; docs/PERFORMANCE.md)
        base = bilinear_phases(lr.float(), d.scale)
        freq = d.frequency_features(dequantized.to(dtype), tables, offsets).contiguous(memory_format=self.layout)
        k = d.pixel_in.kernel_size[0]
        x = self._conv(lr.to(dtype) - 0.5, d.pixel_in.weight, self._bias(d.pixel_in, offsets, "pixel_in"), k, relu=True)
        x = self._conv(x, self.fuse_pixels, self._bias(d.fuse, offsets, "fuse"), 1)
        features = None
        if detail is not None:
            if not d.detail_latent:
                raise ValueError("this decoder has no detail branch")
            detail = detail.to(dtype)
            features = d.detail_features(detail, offsets).contiguous(memory_format=self.layout)
            x = self._conv_into(x, features, d.detail_fuse.weight, None, 1)
        x = self._conv_into(x, freq, self.fuse_frequencies, None, 1, relu=True)
        del freq
        for i, block in enumerate(d.body):
            name = f"body.{i}"
            t = self._conv(x, block.conv1.weight, self._bias(block.conv1, offsets, f"{name}.conv1"), 3, relu=True)
            k2 = block.conv2.kernel_size[0]
            x = self._conv_into(x, t, block.conv2.weight, self._bias(block.conv2, offsets, f"{name}.conv2"), k2)
            del t
        residual = self._conv(x, d.tail.weight, self._bias(d.tail, offsets, "tail"), d.tail.kernel_size[0])
        del x
        if features is not None:  # the layer's two outputs summed into the residual before the one float32 add
            self._conv_into(residual, features, d.detail_tail.weight, None, 1)
            del features
            stride = self.linear_transposed.shape[-1]
            residual.add_(F.conv_transpose2d(detail, self.linear_transposed, stride=stride))
        base.add_(residual)
        return base
