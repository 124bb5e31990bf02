"""The layering, enforced: each package imports only what its layer may (app/codec/__init__.py).

Read statically from every module's import statements (top level and inside functions), so a
rule is broken the moment someone writes the import, whether or not a test runs that line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"

# What each codec layer may import from app.codec (besides itself).
CODEC_LAYERS = {
    "app.codec.errors": set(),
    "app.codec.files": {"app.codec.errors"},
    "app.codec.nets": {"app.codec.errors", "app.codec.files"},
    "app.codec.engine": {"app.codec.errors", "app.codec.files", "app.codec.nets"},
    "app.codec.api": {"app.codec.errors", "app.codec.files", "app.codec.nets", "app.codec.engine"},
}
# The viewer's window process may use the torch-free codec only; the codec service (a child
# process) is the one viewer module that reaches the codec's door.
# engine.allocator: the one torch-free module of the engine (the allocator policy the viewer hands
# its codec service); engine/__init__ imports nothing, and the test below loads it without torch
VIEWER_ALLOWED = ("app.codec.errors", "app.codec.files", "app.codec.engine.allocator")
VIEWER_SERVICE_MODULES = {"app.viewer.codec_service"}
VIEWER_SERVICE_ALLOWED = VIEWER_ALLOWED + ("app.codec.api",)
HEAVY = ("torch", "onnxruntime", "constriction")  # never in the window's process
# app/batch (hyperthumb convert) sits beside the CLI: it uses the codec's door and its torch-free
# files, never the networks directly, the viewer, Qt or the CLI; of the viewer, only the codec
# service (a child process) imports it, for the per-photo path of File > Export Folder.
BATCH_ALLOWED = ("app.codec.errors", "app.codec.files", "app.codec.api")
QT = ("PySide6", "shiboken6", "pytestqt")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]  # "from app.codec import api"
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((APP / folder).rglob("*.py"))


def is_under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> str | None:
    return next((layer for layer in CODEC_LAYERS if is_under(module, [layer])), None)


def codec_violations() -> list[str]:
    bad = []
    for path in modules_under("codec"):
        own = layer_of(module_name(path))
        for line, imported in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{line} ({imported.split('.')[0] if imported.startswith(HEAVY + QT) else imported})"
            if is_under(imported, QT) or is_under(
                imported, ["app.viewer", "app.cli", "app.training", "app.evaluation"]
            ):
                bad.append(where)
            target = layer_of(imported)
            if own and target and target != own and target not in CODEC_LAYERS[own]:
                bad.append(where)
            if own == "app.codec.files" and is_under(imported, HEAVY):
                bad.append(where)
    return sorted({b.rsplit(" (", 1)[0]: b for b in bad}.values())


def viewer_violations() -> list[str]:
    bad = []
    for path in modules_under("viewer"):
        name = module_name(path)
        allowed = VIEWER_SERVICE_ALLOWED if name in VIEWER_SERVICE_MODULES else VIEWER_ALLOWED
        for line, imported in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{line} ({imported.split('.')[0] if imported.startswith(HEAVY + QT) else imported})"
            if is_under(imported, ["app.codec"]) and imported != "app.codec" and not is_under(imported, allowed):
                bad.append(where)
            if name not in VIEWER_SERVICE_MODULES and is_under(imported, HEAVY):
                bad.append(where)
            if is_under(imported, ["app.batch"]) and name not in VIEWER_SERVICE_MODULES:
                bad.append(where)  # the service runs the batch engine's per-photo path; the window never
    return sorted({b.rsplit(" (", 1)[0]: b for b in bad}.values())


def batch_violations() -> list[str]:
    bad = []
    for path in modules_under("batch"):
        for line, imported in imports_of(path):
            where = (
                f"{path.relative_to(ROOT)}:{line} ({imported.split('.')[0] if imported.startswith(QT) else imported})"
            )
            if is_under(imported, ["app.codec"]) and imported != "app.codec" and not is_under(imported, BATCH_ALLOWED):
                bad.append(where)
            if is_under(imported, QT) or is_under(
                imported, ["app.viewer", "app.cli", "app.training", "app.evaluation"]
            ):
                bad.append(where)
    return sorted({b.rsplit(" (", 1)[0]: b for b in bad}.values())


def test_the_codec_layers_import_only_downwards_and_never_qt():
    assert codec_violations() == []


def test_the_viewer_imports_only_the_torch_free_codec():
    assert viewer_violations() == []


def test_the_batch_engine_uses_only_the_codec_door_and_never_qt_or_the_viewer():
    assert batch_violations() == []


def test_the_rules_catch_a_broken_import(tmp_path, monkeypatch):
    """The checks must be able to fail: a module that breaks each rule is reported."""
    (tmp_path / "app" / "codec" / "files").mkdir(parents=True)
    (tmp_path / "app" / "viewer").mkdir(parents=True)
    (tmp_path / "app" / "codec" / "files" / "bad.py").write_text(
        "import torch\nfrom app.codec.engine.runtime import SPECS\n\ndef f():\n    from PySide6 import QtCore\n"
    )
    (tmp_path / "app" / "viewer" / "bad.py").write_text(
        "def g():\n    from app.codec.api import Codec\n    import torch\n    from app.batch import convert\n"
    )
    (tmp_path / "app" / "batch").mkdir(parents=True)
    (tmp_path / "app" / "batch" / "bad.py").write_text(
        "from app.codec.engine.weights import find_weights\nfrom app.viewer import main\nimport PySide6\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "APP", tmp_path / "app")
    assert len(codec_violations()) == 3
    assert len(viewer_violations()) == 3
    assert len(batch_violations()) == 3


def test_the_torch_free_package_loads_without_torch():
    """At run time too: importing the files package (everything in it) and the engine's allocator
    policy pulls in no torch."""
    every = ", ".join([*(module_name(p) for p in modules_under("codec/files")), "app.codec.engine.allocator"])
    code = f"import sys, {every}; sys.exit(sorted(m for m in {HEAVY!r} if m in sys.modules) or 0)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr or result.stdout
