"""Make the bundled sample HyperThumbnails in resources/samples/ from Debian's mate-backgrounds.

The viewer opens these when started with no argument, and the tests open them. Each is the
full-resolution photo from the package encoded by the project's own encoder with the default
weights at the FINE preset (with a detail layer), so a newcomer can zoom in and watch the reconstruction replace
the preview. They must stay small (<= 5 MB in all) and freely licensed
(GPL-2+, credited in samples/CREDITS.txt). Run this again whenever the default weights change:
a test fails when a sample names other weights than the installed default.

The .deb and its unpacked tree are cached outside the repository (~/.cache/hyperthumb/debs),
so re-running only re-encodes. Needs apt-get and dpkg (Debian/Ubuntu).

    python resources/make_samples.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a checkout, installed or not
from app.codec.api import RATE_PRESETS, Codec

PACKAGE = "mate-backgrounds"
CACHE = Path.home() / ".cache" / "hyperthumb" / "debs"
NATURE = Path("usr/share/backgrounds/mate/nature")
SAMPLES = Path(__file__).resolve().parent / "samples"
RATE = "FINE"
MAX_TOTAL_BYTES = 5 * 1024 * 1024

# source file in the package -> (sample name, copyright line from the package's copyright file)
PICKS = {
    "Dune.jpg": ("dune.jpg", "2007 Marco Cogoni, 2008 Hylke Bons"),
    "Garden.jpg": ("garden.jpg", "2008 Charles Barbin"),
    "LadyBird.jpg": ("ladybird.jpg", "2008 Charles Barbin"),
}


def fetch_deb() -> Path:
    """The package's .deb in the cache, downloading it (after an apt-get update if needed)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        download = ["apt-get", "download", PACKAGE]
        if subprocess.run(download, cwd=CACHE).returncode != 0:
            subprocess.run(["apt-get", "update"], check=True)
            subprocess.run(download, cwd=CACHE, check=True)
        debs = sorted(CACHE.glob(f"{PACKAGE}_*.deb"))
    return debs[-1]


def unpack(deb: Path) -> Path:
    """Unpack the .deb next to it (once) and return the nature backgrounds folder."""
    root = deb.with_suffix("")
    if not (root / NATURE).is_dir():
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root / NATURE


def write_sample(codec: Codec, source: Path, destination: Path) -> int:
    """Encode the full-resolution photo as a HyperThumbnail; returns the bytes written."""
    result = codec.encode_file(source, destination, rate=RATE_PRESETS[RATE], force=True)
    return result.file_size


def write_credits(version: str, codec: Codec) -> None:
    weights = codec.weights()
    lines = [
        f"Sample photos from the Debian package {PACKAGE} {version}; license GPL-2+.",
        "Each is a HyperThumbnail of the full-resolution photo, made by resources/make_samples.py",
        f"with the weights {weights.model_id} (sha256 {weights.sha256[:12]}) at the {RATE} preset.",
        "",
    ]
    lines += [f"{name}: {source}, copyright {holders}" for source, (name, holders) in PICKS.items()]
    (SAMPLES / "CREDITS.txt").write_text("\n".join(lines) + "\n")


def main() -> None:
    deb = fetch_deb()
    nature = unpack(deb)
    SAMPLES.mkdir(exist_ok=True)
    codec = Codec()
    total = sum(write_sample(codec, nature / source, SAMPLES / name) for source, (name, _) in PICKS.items())
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"samples are {total} bytes, more than the {MAX_TOTAL_BYTES} allowed")
    write_credits(deb.stem.split("_")[1], codec)
    print(f"wrote {len(PICKS)} samples, {total / 1e6:.2f} MB, to {SAMPLES}")


if __name__ == "__main__":
    main()
