"""The codec's named settings, torch-free so the viewer and the CLI can show them without torch.

``RATE_PRESETS`` are the encoder's one knob by name (0 = smallest file, 1 = largest; above
``HIGH`` the file also carries the detail layer). The tile sizes are how the networks split a
photo: the viewer groups its zoom tiles into pieces of at most ``DEFAULT_DECODE_TILE``.
"""

from __future__ import annotations

RATE_PRESETS = {"LOW": 0.0, "MEDIUM": 0.2, "HIGH": 0.4, "FINE": 0.7, "FINEST": 1.0}
DEFAULT_RATE = "MEDIUM"

DEFAULT_ENCODE_TILE = 256  # thumbnail pixels per tile side (1024 photo pixels)
DEFAULT_DECODE_TILE = 512  # with margins ~580x580: big enough that margins cost little
# A whole large photo is decoded in smaller tiles: each tile's activations are ~300 MB at 512 and
# ~4x less at 256, which kept a 24 MP decode (v4, FINE, 2-core Xeon) at 765 MB peak RSS instead of
# 1,104 MB, for ~10% more network time (the margins). Regions of a view stay at 512.
LARGE_DECODE_PIXELS = 12_000_000
LARGE_DECODE_TILE = 256
