"""Where the bundled resources are: the repository's resources/ folder next to ``app/``."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
SAMPLES = RESOURCES / "samples"
ICON_SVG = RESOURCES / "hyperthumbnail-viewer.svg"
ICON_PNG = RESOURCES / "hyperthumbnail-viewer.png"
