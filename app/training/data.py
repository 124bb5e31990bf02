"""Training and validation photos: fetched from Debian wallpaper packages, split by name, packed.

``../shared/DATA.md`` names the only allowed sources. This module downloads them with
``apt-get download``, unpacks them with ``dpkg -x`` into a cache folder outside the repo
(``~/.cache/hyperthumb`` or ``$HYPERTHUMB_DATA``), lists the usable images under stable names
(``plasma/Kite``, ``mate/Dune``, ...), keeps a fixed validation split out of training, and cuts
the training images into a compact pack of crops (high-quality JPEG, <= 50 MiB) that training
reads, on this machine or carried to a GPU machine.
"""

import io
import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app.codec.files.atomic import atomic_write_bytes

PACKAGES = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "ukui-wallpapers",
    "gnome-backgrounds",
)

# Photographs (the rest are renders and illustrations: kept for training, with fewer crops).
PHOTOS = frozenset(
    "plasma/" + n
    for n in [
        "Autumn",
        "BytheWater",
        "ColdRipple",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Grey",
        "Kite",
        "MilkyWay",
        "OneStandsOut",
        "Path",
        "Volna",
        "summer_1am",
    ]
) | frozenset(
    "mate/" + n
    for n in [
        "Aqua",
        "Blinds",
        "Dune",
        "FreshFlower",
        "Garden",
        "GreenMeadow",
        "LadyBird",
        "RainDrops",
        "Storm",
        "TwoWings",
        "Wood",
        "YellowFlower",
    ]
)

# Fixed validation photos, never trained on: varied content, sizes 1920x1200 .. 5120x2880.
VALIDATION = (
    "plasma/ColorfulCups",
    "plasma/EveningGlow",
    "plasma/Path",
    "plasma/Volna",
    "plasma/summer_1am",
    "mate/Blinds",
    "mate/Storm",
    "mate/TwoWings",
)

# Nearly blank or duplicated images that would only teach the model flat colour.
EXCLUDED = frozenset(
    [
        "mate/Arc-Colors-Transparent-Wallpaper",
        "mate/Silk",
        "mate/Spring",
        "mate/Waves",
        "mate/GreenTraditional",
        "mate/MATE-Stripes-Dark",
        "mate/MATE-Stripes-Light",
        "mate/Stripes",
        "mate/Elephants",
        "mate/Elephants_3840x2160",
        "gnome/vnc-d",
        "gnome/vnc-l",
        "gnome/symbolic-d",
        "gnome/symbolic-l",
    ]
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SHORT_SIDE = 1000
PACK_CROP = 384  # crop side in the pack; training takes random sub-crops
PACK_QUALITY = 95
PACK_BUDGET = 48 * 2**20  # bytes; DATA.md asks for <= 50 MiB to carry to a GPU machine
EDGE_MARGIN = 0.04  # fraction of each side skipped: wallpapers' edges are often retouched


class DataError(RuntimeError):
    """A data step failed in a way the user can act on (no network, missing tool, ...)."""


@dataclass(frozen=True)
class SourceImage:
    name: str  # stable, e.g. "plasma/Kite"
    path: Path
    width: int
    height: int

    @property
    def is_photo(self) -> bool:
        return self.name in PHOTOS

    @property
    def is_validation(self) -> bool:
        return self.name in VALIDATION


def cache_dir(directory: str | os.PathLike | None = None) -> Path:
    return Path(directory or os.environ.get("HYPERTHUMB_DATA") or Path.home() / ".cache" / "hyperthumb")


def fetch_packages(cache: Path, log=print) -> dict[str, Path]:
    """Download (once) and unpack each package; returns package -> unpacked folder."""
    debs, unpacked = cache / "debs", cache / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    folders = {}
    for package in PACKAGES:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            log(f"downloading {package} ...")
            if shutil.which("apt-get") is None:
                raise DataError("apt-get is not available: the training photos come from Debian packages")
            run = subprocess.run(
                ["apt-get", "download", package],
                check=False,
                cwd=debs,
                capture_output=True,
                text=True,
            )
            found = sorted(debs.glob(f"{package}_*.deb"))
            if run.returncode != 0 or not found:
                detail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no .deb appeared"]
                raise DataError(f"apt-get download {package} failed: {detail[0]} (try `apt-get update` first)")
        target = unpacked / package
        if not (target / ".complete").exists():
            log(f"unpacking {found[-1].name} ...")
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            subprocess.run(["dpkg", "-x", str(found[-1]), str(target)], check=True)
            (target / ".complete").touch()
        folders[package] = target
    return folders


def _stable_name(package: str, path: Path) -> str | None:
    """Stable short name of an image file, or None for previews and screenshots."""
    if package == "plasma-workspace-wallpapers":
        parts = path.parts
        if "images" not in parts:
            return None  # screenshot.png previews
        return "plasma/" + parts[parts.index("contents") - 1]
    prefix = {
        "mate-backgrounds": "mate",
        "ukui-wallpapers": "ukui",
        "gnome-backgrounds": "gnome",
    }[package]
    return f"{prefix}/{path.stem}"


def list_images(folders: dict[str, Path]) -> list[SourceImage]:
    """Usable images, one per name (the largest file when a wallpaper ships several sizes)."""
    best: dict[str, SourceImage] = {}
    for package, folder in folders.items():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            name = _stable_name(package, path.relative_to(folder))
            if name is None or name in EXCLUDED:
                continue
            try:
                with Image.open(path) as im:
                    width, height = im.size
            except OSError:
                continue
            if min(width, height) < MIN_SHORT_SIDE:
                continue
            current = best.get(name)
            if current is None or width * height > current.width * current.height:
                best[name] = SourceImage(name, path, width, height)
    return sorted(best.values(), key=lambda s: s.name)


def _flat_name(name: str) -> str:
    return name.replace("/", "-")


def write_validation(images: list[SourceImage], folder: Path) -> list[Path]:
    """Copy the validation originals (bytes unchanged) into ``folder`` for ``hyperthumb eval``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for image in images:
        if image.is_validation:
            target = folder / (_flat_name(image.name) + image.path.suffix.lower())
            if not target.exists():
                shutil.copyfile(image.path, target)
            written.append(target)
    missing = set(VALIDATION) - {i.name for i in images if i.is_validation}
    if missing:
        raise DataError(f"validation photos missing from the packages: {', '.join(sorted(missing))}")
    return written


def _crop_count(image: SourceImage) -> int:
    """Crops per image: proportional to area, photos weighted 10x over renders/illustrations."""
    area_in_crops = image.width * image.height / PACK_CROP**2
    return max(2, round(area_in_crops * (0.8 if image.is_photo else 0.08)))


def _random_crops(rgb: np.ndarray, count: int, rng: random.Random) -> list[np.ndarray]:
    """Random crops away from the edges, skipping nearly flat ones (sky, blank graphics)."""
    height, width = rgb.shape[:2]
    my, mx = int(height * EDGE_MARGIN), int(width * EDGE_MARGIN)
    crops, tries = [], 0
    while len(crops) < count and tries < count * 10:
        tries += 1
        y = rng.randint(my, height - my - PACK_CROP)
        x = rng.randint(mx, width - mx - PACK_CROP)
        crop = rgb[y : y + PACK_CROP, x : x + PACK_CROP]
        if crop.astype(np.float32).std() >= 4.0:
            crops.append(crop)
    return crops


def build_pack(images: list[SourceImage], folder: Path, seed: int = 0, log=print) -> dict:
    """Cut training crops into ``folder`` (JPEG q95, 4:4:4) with an ``index.json``; <= PACK_BUDGET."""
    rng = random.Random(seed)
    training = [i for i in images if not i.is_validation]
    encoded: list[tuple[str, str, bool, bytes]] = []
    for image in training:
        with Image.open(image.path) as im:
            rgb = np.asarray(im.convert("RGB"))
        for k, crop in enumerate(_random_crops(rgb, _crop_count(image), rng)):
            buffer = io.BytesIO()
            Image.fromarray(crop).save(buffer, "JPEG", quality=PACK_QUALITY, subsampling=0)
            encoded.append(
                (
                    f"{_flat_name(image.name)}-{k:03d}.jpg",
                    image.name,
                    image.is_photo,
                    buffer.getvalue(),
                )
            )
        log(f"  {image.name}: {image.width}x{image.height}, {_crop_count(image)} crops")
    rng.shuffle(encoded)
    total, kept = 0, []
    for entry in encoded:  # shuffled, so a budget cut thins every source evenly
        if total + len(entry[3]) > PACK_BUDGET:
            continue
        total += len(entry[3])
        kept.append(entry)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for file_name, _, _, data in kept:
        (folder / file_name).write_bytes(data)
    index = {
        "crop": PACK_CROP,
        "seed": seed,
        "validation": list(VALIDATION),
        "sources": sorted({e[1] for e in kept}),
        "crops": [{"file": f, "source": s, "photo": p} for f, s, p, _ in sorted(kept)],
        "bytes": total,
    }
    atomic_write_bytes(folder / "index.json", (json.dumps(index, indent=1) + "\n").encode(), force=True)
    return index


def prepare(cache: str | os.PathLike | None = None, seed: int = 0, log=print) -> Path:
    """The whole data command: fetch, list, validation folder, training pack. Returns the cache."""
    root = cache_dir(cache)
    images = list_images(fetch_packages(root, log))
    validation = write_validation(images, root / "validation")
    log(f"{len(images)} images; {len(validation)} validation photos in {root / 'validation'}")
    index = build_pack(images, root / "pack", seed=seed, log=log)
    log(
        f"pack: {len(index['crops'])} crops from {len(index['sources'])} images, "
        f"{index['bytes'] / 2**20:.1f} MiB in {root / 'pack'}"
    )
    return root


def load_pack(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """All crops as uint8 [N, S, S, 3] and a sampling weight per crop (photos count double)."""
    folder = Path(folder)
    index_path = folder / "index.json"
    if not index_path.is_file():
        raise DataError(f"no training pack in {folder} (run `python -m app.training data` first)")
    index = json.loads(index_path.read_text())
    crops = np.stack([np.asarray(Image.open(folder / c["file"]).convert("RGB")) for c in index["crops"]])
    weights = np.array([2.0 if c["photo"] else 1.0 for c in index["crops"]])
    return crops, weights / weights.sum()
