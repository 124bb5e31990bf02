"""RGB <-> YCbCr with the JFIF (full-range BT.601) constants libjpeg uses.

Values are on the 0..255 scale, as the JPEG file stores them; tensors are [..., 3, H, W].
"""

import torch

_RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ]
)
_YCBCR_TO_RGB = torch.tensor(
    [
        [1.0, 0.0, 1.402],
        [1.0, -0.344136286, -0.714136286],
        [1.0, 1.772, 0.0],
    ]
)
_CHROMA_OFFSET = torch.tensor([0.0, 128.0, 128.0])


def _mix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    matrix = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,...jhw->...ihw", matrix, x)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB (0..255) -> YCbCr (0..255, chroma centred on 128)."""
    offset = _CHROMA_OFFSET.to(device=rgb.device, dtype=rgb.dtype).view(3, 1, 1)
    return _mix(rgb, _RGB_TO_YCBCR) + offset


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """YCbCr (0..255) -> RGB (0..255); not clamped."""
    offset = _CHROMA_OFFSET.to(device=ycbcr.device, dtype=ycbcr.dtype).view(3, 1, 1)
    return _mix(ycbcr - offset, _YCBCR_TO_RGB)
