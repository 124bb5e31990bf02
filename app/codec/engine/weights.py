"""Trained weights and their manifest.

``model_weights/manifest.json`` lists every installed model::

    {"default": "<model id>",
     "models": {"<model id>": {"file": "<id>.pt", "sha256": "...", "trained": true,
                                "architecture": {...ModelConfig...}, "training": {...},
                                "results": {...}}}}

An entry may also have a ``"role"`` (e.g. ``"jpeg-sr-baseline"``: the decoder for standard
JPEG thumbnails that ``hyperthumb eval`` compares against).

The ``.pt`` file holds ``{"config": ..., "state_dict": ...}``. Loading checks the hash, that
the file's architecture equals the manifest's, and that every tensor fits, and fails with a
``WeightsError`` saying which. A model marked ``"trained": false`` (tests, smoke runs) loads,
but callers must say so to the user: an untrained model is never passed off as a trained one.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from app.codec.errors import WeightsError, shorten
from app.codec.files.atomic import atomic_output, atomic_write_bytes
from app.codec.nets.model import HyperThumbnailModel, ModelConfig

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "model_weights"
MANIFEST_NAME = "manifest.json"
NO_WEIGHTS_MESSAGE = "No trained weights are installed: reconstruction and export are unavailable."


@dataclass(frozen=True)
class WeightsInfo:
    model_id: str
    path: Path
    sha256: str
    config: ModelConfig
    trained: bool
    entry: dict  # the manifest entry as written (training recipe, results, ...)


def weights_dir(directory: str | os.PathLike | None = None) -> Path:
    return Path(directory or os.environ.get("HYPERTHUMB_WEIGHTS") or DEFAULT_WEIGHTS_DIR)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normal_sha256(value: object) -> str:
    """A sha256 as compared everywhere: lower-case hex, surrounding spaces dropped (a hand-edited
    manifest or marker may spell it in capitals; ``hashlib`` gives lower case)."""
    return value.strip().lower() if isinstance(value, str) else ""


def read_manifest(directory: str | os.PathLike | None = None) -> dict:
    path = weights_dir(directory) / MANIFEST_NAME
    if not path.is_file():
        raise WeightsError(f"{NO_WEIGHTS_MESSAGE} ({path} is missing)")
    try:
        manifest = json.loads(path.read_text())
        manifest["models"].items()
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise WeightsError(f"weights manifest {path} is damaged: {exc}") from None
    return manifest


def find_weights(
    directory: str | os.PathLike | None = None, *, model_id: str | None = None, sha256: str | None = None
) -> WeightsInfo:
    """The manifest entry asked for: by id, by hash (to match a file's marker), else the default."""
    directory = weights_dir(directory)
    manifest = read_manifest(directory)
    models = manifest["models"]
    if sha256 is not None:
        sha256 = normal_sha256(sha256)
        matches = [mid for mid, e in models.items() if isinstance(e, dict) and normal_sha256(e.get("sha256")) == sha256]
        if not matches:
            raise WeightsError(
                f"this HyperThumbnail was made with weights {shorten(sha256[:12])}, which are not installed in {directory}"
            )
        model_id = matches[0]
    model_id = model_id or manifest.get("default")
    if not isinstance(model_id, str) or model_id not in models:
        raise WeightsError(f"model {shorten(repr(model_id))} is not in {directory / MANIFEST_NAME}")
    entry = models[model_id]
    try:
        config = ModelConfig.from_dict(entry["architecture"])
        sha = normal_sha256(entry["sha256"])
        return WeightsInfo(model_id, directory / entry["file"], sha, config, bool(entry.get("trained")), entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"manifest entry {model_id!r} is incomplete or invalid: {exc}") from None


def load_model(
    info: WeightsInfo, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> HyperThumbnailModel:
    """Build the architecture the manifest names and load the verified weights into it."""
    if not info.path.is_file():
        raise WeightsError(f"weights file {info.path} is missing")
    actual = sha256_file(info.path)
    if actual != info.sha256:
        raise WeightsError(
            f"weights file {info.path.name} fails its sha256 check (expected {info.sha256[:12]}, got {actual[:12]})"
        )
    try:
        payload = torch.load(info.path, map_location="cpu", weights_only=True)
        file_config = ModelConfig.from_dict(payload["config"])
        state = payload["state_dict"]
    except Exception as exc:  # noqa: BLE001 -- any unreadable payload is a weights problem for the user
        raise WeightsError(f"weights file {info.path.name} cannot be read: {exc}") from None
    if file_config != info.config:
        raise WeightsError(f"weights file {info.path.name} was saved for another architecture than the manifest says")
    model = HyperThumbnailModel(info.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"weights {info.path.name} do not fit the architecture: {first}") from None
    return model.to(device=device, dtype=dtype).eval()


def save_weights(
    model: HyperThumbnailModel,
    directory: str | os.PathLike,
    model_id: str,
    *,
    trained: bool,
    training: dict | None = None,
    results: dict | None = None,
    make_default: bool = True,
    role: str | None = None,
) -> WeightsInfo:
    """Write ``<model_id>.pt`` and add it to the manifest (both written atomically); ``role``,
    if given, is stored in the entry so tools can find the model by its job."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{model_id}.pt"
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    with atomic_output(path, force=True) as tmp:
        torch.save({"config": model.config.to_dict(), "state_dict": state}, tmp)
    manifest_path = directory / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"models": {}}
    manifest["models"][model_id] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "trained": trained,
        "architecture": model.config.to_dict(),
        "training": training or {},
        "results": results or {},
    }
    if role is not None:
        manifest["models"][model_id]["role"] = role
    if make_default or "default" not in manifest:
        manifest["default"] = model_id
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)
    return find_weights(directory, model_id=model_id)


def record_results(directory: str | os.PathLike, model_id: str, results: dict) -> None:
    """Store measured results (from ``hyperthumb eval``) in a model's manifest entry; the weights
    file and its hash are untouched."""
    manifest_path = weights_dir(directory) / MANIFEST_NAME
    manifest = read_manifest(directory)
    if model_id not in manifest["models"]:
        raise WeightsError(f"model {model_id!r} is not in {manifest_path}")
    manifest["models"][model_id]["results"] = results
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)


def installed_weights_status(directory: str | os.PathLike | None = None) -> str | None:
    """None when trained default weights are installed, else one sentence for the user."""
    try:
        info = find_weights(directory)
    except WeightsError as exc:
        return str(exc)
    if not info.path.is_file():
        return f"{NO_WEIGHTS_MESSAGE} ({info.path.name} is missing)"
    if not info.trained:
        return f"The installed weights {info.model_id!r} are untrained (for tests only): reconstructions are not meaningful."
    return None
