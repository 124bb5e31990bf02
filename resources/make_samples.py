"""Make the bundled sample photos in resources/samples/ from Debian's mate-backgrounds.

The viewer opens these when started with no argument, and the tests open them, so they
must be small (long side 1600 px, JPEG quality 88, a few hundred kB each) and freely
licensed (GPL-2+, credited in samples/CREDITS.txt). For now they are plain JPEGs; they
will be replaced by HyperThumbnails made from the same photos by the project's encoder
(``hyperthumb encode``) once trained weights exist.

The .deb and its unpacked tree are cached outside the repository (~/.cache/hyperthumb/debs),
so re-running only re-encodes. Needs apt-get and dpkg (Debian/Ubuntu).

    python resources/make_samples.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

PACKAGE = "mate-backgrounds"
CACHE = Path.home() / ".cache" / "hyperthumb" / "debs"
NATURE = Path("usr/share/backgrounds/mate/nature")
SAMPLES = Path(__file__).resolve().parent / "samples"
LONG_SIDE = 1600
QUALITY = 88
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


def write_sample(source: Path, destination: Path) -> int:
    """Downscale to LONG_SIDE and save as a baseline JPEG; returns the bytes written."""
    with Image.open(source) as im:
        im = im.convert("RGB")
        im.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        im.save(destination, "JPEG", quality=QUALITY, optimize=True)
    return destination.stat().st_size


def write_credits(version: str) -> None:
    lines = [f"Sample photos from the Debian package {PACKAGE} {version}, downscaled; license GPL-2+.", ""]
    lines += [f"{name}: {source}, copyright {holders}" for source, (name, holders) in PICKS.items()]
    (SAMPLES / "CREDITS.txt").write_text("\n".join(lines) + "\n")


def main() -> None:
    deb = fetch_deb()
    nature = unpack(deb)
    SAMPLES.mkdir(exist_ok=True)
    total = sum(write_sample(nature / source, SAMPLES / name) for source, (name, _) in PICKS.items())
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"samples are {total} bytes, more than the {MAX_TOTAL_BYTES} allowed")
    write_credits(deb.stem.split("_")[1])
    print(f"wrote {len(PICKS)} samples, {total / 1e6:.2f} MB, to {SAMPLES}")


if __name__ == "__main__":
    main()
