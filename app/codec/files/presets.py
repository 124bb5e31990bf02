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
