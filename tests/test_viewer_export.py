"""Export as a user meets it: the dialog, its estimate, the worker, cancel, questions, errors, batch.

Photos are tiny and the weights are the tiny untrained test weights, so every export takes a
fraction of a second on a CPU; the codec itself says whether an output is a HyperThumbnail. The
encoder runs in the codec service's process: to cancel it at a known point, the tests hold it
there with ``viewer_service_hooks`` (a gate of files), which that process imports.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from viewer_service_hooks import GATE_ENV

from app.codec.api import RATE_PRESETS, Codec
from app.codec.files.document import open_image
from app.codec.files.reader import read_marker
from app.synthetic import photo_like
from app.viewer import batch_export, codec_bridge, export_dialog, export_worker, time_left
from app.viewer.batch_export import plan_batch
from app.viewer.codec_service import PRELOAD_ENV
from app.viewer.export_dialog import ExportDialog
from app.viewer.export_worker import ExportOptions
from app.viewer.playlist import Playlist
from app.viewer.time_left import TimeLeft, time_left_text
from app.viewer.units import size_text as format_size
from app.viewer.window import MainWindow

TIMEOUT_MS = 20000
WIDTH, HEIGHT = 200, 136


class EncoderGate:
    """Holds the service's encoder before its next tile while ``hold``; ``holding()`` once it waits there."""

    def __init__(self, folder: Path):
        self.folder = folder

    def hold(self) -> None:
        (self.folder / "encoding").unlink(missing_ok=True)
        (self.folder / "hold-encode").touch()

    def holding(self) -> bool:
        return (self.folder / "encoding").exists()

    def release(self) -> None:
        (self.folder / "hold-encode").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def gate_folder(tmp_path_factory):
    """A codec service that imports the gate: the running one (if any) is restarted with it."""
    folder = tmp_path_factory.mktemp("gate")
    saved = {name: os.environ.get(name) for name in (PRELOAD_ENV, GATE_ENV)}
    os.environ[PRELOAD_ENV], os.environ[GATE_ENV] = "viewer_service_hooks", str(folder)
    codec_bridge.stop_service()
    yield folder
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    codec_bridge.stop_service()  # the next module's service starts without the gate


@pytest.fixture
def gate(gate_folder):
    made = EncoderGate(gate_folder)
    yield made
    made.release()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("weights")
    make_weights(directory)
    return directory


def save_photo(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 1) -> Path:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"TestCam"}})
    Image.fromarray(photo_like(width, height, seed=seed)).save(path, quality=95, exif=exif)
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return save_photo(folder / "photo.jpg")


class CodecSpy:
    """Records which threads asked for the codec's heavy calls (load, estimate, encode)."""

    def __init__(self, monkeypatch):
        self.threads: set[int] = set()
        self.calls: list[str] = []
        for name in ("load_photo", "estimate_size", "encode_photo", "convert_photo"):
            monkeypatch.setattr(codec_bridge, name, self._wrap(name, getattr(codec_bridge, name)))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.threads.add(threading.get_ident())
            self.calls.append(name)
            return real(*args, **kwargs)

        return call


@pytest.fixture
def spy(monkeypatch) -> CodecSpy:
    return CodecSpy(monkeypatch)


@pytest.fixture
def dialog(qtbot, weights):
    def opener(source: Path, **options) -> ExportDialog:
        made = ExportDialog(source, weights_dir=options.pop("weights_dir", weights))
        qtbot.addWidget(made)
        made.show()
        return made

    return opener


def wait_estimate(qtbot, made: ExportDialog):
    qtbot.waitUntil(lambda: made.current_estimate() is not None, timeout=TIMEOUT_MS)
    return made.current_estimate()


def export_and_wait(qtbot, made: ExportDialog):
    with qtbot.waitSignal(made.exported, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# --------------------------------------------------------------------------- the dialog


def test_export_writes_a_hyperthumbnail_off_the_gui_thread(qtbot, dialog, photo, spy):
    before = fingerprint(photo)
    made = dialog(photo)
    assert made.destination() == photo.parent / "photo.hyper.jpg"
    assert made.keep_exif.isChecked() and not made.strip_gps.isChecked()
    made.preset_buttons["HIGH"].click()
    assert made.rate() == RATE_PRESETS["HIGH"] and made.preset_buttons["HIGH"].isChecked()
    exported = export_and_wait(qtbot, made)
    out = photo.parent / "photo.hyper.jpg"
    assert exported.destination == out and exported.file_size == out.stat().st_size
    marker = read_marker(out)
    assert (
        marker is not None and (marker.width, marker.height) == (WIDTH, HEIGHT) and marker.rate == RATE_PRESETS["HIGH"]
    )
    document = open_image(out)
    assert document.is_hyperthumbnail and document.full_size == (WIDTH, HEIGHT)
    assert piexif.load(document.exif)["0th"][piexif.ImageIFD.Make] == b"TestCam"
    assert fingerprint(photo) == before  # the source is only read
    assert "encode_photo" in spy.calls and "estimate_size" in spy.calls
    assert threading.get_ident() not in spy.threads and spy.threads  # never the GUI thread


def test_return_exports_even_after_picking_a_preset(qtbot, dialog, photo):
    made = dialog(photo)
    made.show()
    made.preset_buttons["LOW"].click()
    made.preset_buttons["LOW"].setFocus()
    with qtbot.waitSignal(made.exported, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(made.preset_buttons["LOW"], Qt.Key.Key_Return)
    assert blocker.args[0].destination.is_file() and made.rate() == 0.0


def test_keep_exif_off_and_the_slider(qtbot, dialog, photo):
    made = dialog(photo)
    made.keep_exif.setChecked(False)
    assert not made.strip_gps.isEnabled()
    made.slider.setValue(30)
    assert made.rate() == pytest.approx(0.3) and not any(b.isChecked() for b in made.preset_buttons.values())
    made.destination_edit.setText("plain.jpg")  # relative: beside the source
    export_and_wait(qtbot, made)
    out = photo.parent / "plain.jpg"
    assert read_marker(out).rate == pytest.approx(0.3)
    assert "exif" not in Image.open(out).info  # no EXIF of the source's (and its orientation is 1)


def test_cancel_leaves_no_file(qtbot, dialog, photo, spy, gate):
    before = sorted(p.name for p in photo.parent.iterdir())
    gate.hold()
    made = dialog(photo)
    qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(gate.holding, timeout=TIMEOUT_MS)  # the service's encoder waits after a tile
    assert made.progress.isVisible() and not made.export_button.isEnabled()
    with qtbot.waitSignal(made.worker.exportCancelled, timeout=TIMEOUT_MS):
        qtbot.mouseClick(made.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.wait(300)  # the cancel reaches the service while its encoder still waits
        gate.release()
    assert sorted(p.name for p in photo.parent.iterdir()) == before  # no output, no temporary file
    assert made.isVisible() and "no file was written" in made.status_label.text()
    assert made.export_button.isEnabled()


def test_an_existing_destination_is_replaced_only_when_the_user_agrees(qtbot, dialog, photo, spy, monkeypatch):
    out = photo.parent / "photo.hyper.jpg"
    out.write_bytes(b"keep me")
    asked = []
    monkeypatch.setattr(export_dialog, "ask_overwrite", lambda parent, path: asked.append(path) or False)
    made = dialog(photo)
    qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
    assert asked == [out] and out.read_bytes() == b"keep me"
    assert "already exists and was kept" in made.status_label.text() and "encode_photo" not in spy.calls
    monkeypatch.setattr(export_dialog, "ask_overwrite", lambda parent, path: asked.append(path) or True)
    export_and_wait(qtbot, made)
    assert len(asked) == 2 and read_marker(out) is not None


def test_the_estimate_is_about_the_real_size_and_grows_with_the_rate(qtbot, dialog, tmp_path, weights, monkeypatch):
    source = save_photo(tmp_path / "wide.jpg", 512, 384, seed=3)
    monkeypatch.setattr(export_worker, "ESTIMATE_SAMPLE_PIXELS", 4 * 128 * 128)  # sample a third of it
    made = dialog(source)
    codec = Codec(weights_dir=weights)
    estimates = {}
    for preset in ("LOW", "HIGH"):
        made.preset_buttons[preset].click()
        estimate = wait_estimate(qtbot, made)
        assert not estimate.exact
        assert made.estimate_label.text().startswith(f"about {format_size(estimate.bytes)}")
        real = codec.encode_file(source, tmp_path / f"{preset}.jpg", rate=made.rate()).file_size
        assert 0.5 < estimate.bytes / real < 2.0, (preset, estimate, real)
        estimates[preset] = estimate.bytes
    assert estimates["LOW"] < estimates["HIGH"]
    tip = made.estimate_label.toolTip().splitlines()  # wrapped: Qt shows a plain tooltip as one line
    assert len(tip) > 3 and max(map(len, tip)) <= 60 and "2.8% on average" in " ".join(tip)


def test_a_hyperthumbnail_source_is_reconstructed_then_encoded(qtbot, dialog, photo, weights, tmp_path):
    hyper = Codec(weights_dir=weights).encode_file(photo, tmp_path / "h.jpg").path
    made = dialog(hyper)
    assert "already a HyperThumbnail" in made.note_label.text()
    wait_estimate(qtbot, made)
    assert f"{WIDTH}\u00d7{HEIGHT}" in made.source_label.text()
    exported = export_and_wait(qtbot, made)
    assert read_marker(exported.destination).width == WIDTH


# --------------------------------------------------------------------------- errors


def test_an_unreadable_source_says_so(qtbot, dialog, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not an image")
    made = dialog(bad)
    assert made.status_label.text().startswith("Cannot export:") and not made.export_button.isEnabled()
    qtbot.waitUntil(lambda: made.estimate_label.text().startswith("unavailable:"), timeout=TIMEOUT_MS)


def test_missing_weights_and_bad_destinations_are_messages(qtbot, dialog, photo, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    made = dialog(photo, weights_dir=empty)
    qtbot.waitUntil(lambda: made.estimate_label.text().startswith("unavailable:"), timeout=TIMEOUT_MS)
    assert "No trained weights" in made.estimate_label.text()
    for text, words in (
        (str(tmp_path / "nowhere" / "x.jpg"), "does not exist"),
        (str(photo), "source photo itself"),
        ("out.png", "end the name with .jpg"),
        ("", "Choose where"),
    ):
        made.destination_edit.setText(text)
        qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
        assert words in made.status_label.text()
    made.destination_edit.setText("photo.hyper.jpg")
    with qtbot.waitSignal(made.worker.exportFailed, timeout=TIMEOUT_MS):
        qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
    assert made.status_label.text().startswith("Export failed: No trained weights")
    assert not (photo.parent / "photo.hyper.jpg").exists() and made.export_button.isEnabled()


# --------------------------------------------------------------------------- the window


@pytest.fixture
def window(qtbot, monkeypatch, weights):
    def opener(path: Path, status: str | None = None) -> MainWindow:
        monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: status)
        made = MainWindow(Playlist.from_arguments([path]), weights_dir=weights)
        qtbot.addWidget(made)
        made.show()
        qtbot.waitExposed(made)
        made.check_weights()  # answered off the GUI thread
        qtbot.waitUntil(lambda: "Checking" not in made.export_actions[0].toolTip(), timeout=TIMEOUT_MS)
        return made

    return opener


def test_the_file_menu_offers_export_only_with_trained_weights(qtbot, window, photo):
    made = window(photo, status="No trained weights are installed.")
    actions = {a.text(): a for a in made.export_actions}
    assert actions["&Export as HyperThumbnail\u2026"].shortcut() == QKeySequence("Ctrl+E")
    assert actions["Save &As\u2026"].shortcut() == QKeySequence("Ctrl+Shift+S")
    for action in actions.values():
        assert not action.isEnabled() and "No trained weights are installed." in action.toolTip()
    made = window(photo, status=None)
    assert all(action.isEnabled() for action in made.export_actions)
    made.export_actions[0].trigger()
    assert isinstance(made.export_dialog, ExportDialog) and made.export_dialog.source == photo
    with qtbot.waitSignal(made.export_dialog.exported, timeout=TIMEOUT_MS):
        made.export_dialog.export_button.click()
    assert "Exported photo.hyper.jpg" in made.statusBar().currentMessage()


# --------------------------------------------------------------------------- batch


@pytest.fixture
def mixed_folder(tmp_path, weights) -> Path:
    """plain.jpg (a photo), hyper.jpg (already a HyperThumbnail), broken.jpg (not an image)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    save_photo(folder / "plain.jpg", 96, 64)
    Codec(weights_dir=weights).encode_file(save_photo(tmp_path / "source.jpg", 96, 64, seed=2), folder / "hyper.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


def run_batch(qtbot, made: MainWindow, monkeypatch, out: Path):
    monkeypatch.setattr(
        batch_export, "choose_batch_settings", lambda parent, folder, count, **_: (out, ExportOptions())
    )
    made.export_folder()
    run = made.batch_export
    if run is None:
        return None
    qtbot.waitUntil(lambda: run.summary is not None, timeout=TIMEOUT_MS)
    return run.summary


def test_batch_export_exports_skips_and_reports_failures(
    qtbot, window, mixed_folder, tmp_path, spy, monkeypatch, weights
):
    out = tmp_path / "out"
    out.mkdir()
    before = {p.name: fingerprint(p) for p in mixed_folder.iterdir()}
    made = window(mixed_folder / "plain.jpg")
    summary = run_batch(qtbot, made, monkeypatch, out)
    assert [e.source.name for e in summary.exported] == ["plain.jpg"]
    assert summary.skipped == [(mixed_folder / "hyper.jpg", "already a HyperThumbnail")]
    assert [p.name for p, _ in summary.failed] == ["broken.jpg"] and summary.failed[0][1]
    assert summary.headline() == "1 exported, 1 skipped, 1 failed."
    assert sorted(p.name for p in out.iterdir()) == ["plain.hyper.jpg"]
    assert read_marker(out / "plain.hyper.jpg").width == 96
    assert {p.name: fingerprint(p) for p in mixed_folder.iterdir()} == before
    box = made.batch_export.summary_box
    assert box.text() == summary.headline() and "broken.jpg" in box.informativeText()
    assert threading.get_ident() not in spy.threads and "convert_photo" in spy.calls

    # one code path for batches: hyperthumb convert writes the same bytes for the same photo and options
    from app.batch.convert import Settings, convert_tree

    options = ExportOptions()
    converted = tmp_path / "converted"
    convert_tree(mixed_folder, converted, Settings(rate=options.rate, weights_dir=str(weights)))
    assert (converted / "plain.jpg").read_bytes() == (out / "plain.hyper.jpg").read_bytes()

    # a second run asks once about the existing output: skip, overwrite, or cancel
    answers = []
    monkeypatch.setattr(batch_export, "ask_existing_outputs", lambda parent, existing, total: answers.pop(0))
    answers[:] = ["skip"]
    summary = run_batch(qtbot, made, monkeypatch, out)
    assert not summary.exported and (mixed_folder / "plain.jpg", "plain.hyper.jpg already exists") in summary.skipped
    answers[:] = ["overwrite"]
    assert [e.destination.name for e in run_batch(qtbot, made, monkeypatch, out).exported] == ["plain.hyper.jpg"]
    answers[:] = ["cancel"]
    assert run_batch(qtbot, made, monkeypatch, out) is None


def test_batch_cancel_stops_and_leaves_no_partial_file(qtbot, window, tmp_path, spy, monkeypatch, gate):
    folder = tmp_path / "three"
    folder.mkdir()
    for seed, name in enumerate("abc"):
        save_photo(folder / f"{name}.jpg", 64, 48, seed=seed)
    out = tmp_path / "out"
    out.mkdir()
    gate.hold()
    made = window(folder / "a.jpg")
    monkeypatch.setattr(batch_export, "choose_batch_settings", lambda parent, f, count, **_: (out, ExportOptions()))
    made.export_folder()
    run = made.batch_export
    qtbot.waitUntil(gate.holding, timeout=TIMEOUT_MS)
    assert "Exporting 1 of 3: a.jpg" in run.dialog.label.text()
    qtbot.mouseClick(run.dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    gate.release()
    qtbot.waitUntil(lambda: run.summary is not None, timeout=TIMEOUT_MS)
    assert run.summary.cancelled and run.summary.not_exported == 3 and not run.summary.exported
    assert list(out.iterdir()) == []
    assert spy.calls.count("convert_photo") == 1  # no file after the cancelled one was started


def test_plan_batch_names_never_collide_or_land_on_a_source(tmp_path):
    sources = [tmp_path / n for n in ("a.jpg", "a.png", "b.hyper.jpg", "b.jpg")]
    names = [item.destination.name for item in plan_batch(sources, tmp_path)]
    assert names == ["a.hyper.jpg", "a-png.hyper.jpg", "b.hyper.hyper.jpg", "b-jpg.hyper.jpg"]
    replaceable = plan_batch(sources, tmp_path, replaceable=[tmp_path / "b.hyper.jpg"])
    assert replaceable[3].destination.name == "b.hyper.jpg"
    assert [i.destination.name for i in plan_batch(sources, tmp_path / "elsewhere")][3] == "b.hyper.jpg"


def test_format_size():
    assert format_size(850) == "850 bytes" and format_size(12_345) == "12.3 kB"
    assert format_size(456_789) == "457 kB" and format_size(4_560_000) == "4.56 MB"


def test_a_photo_estimate_is_exact_when_small(qtbot, dialog, photo, weights, tmp_path):
    made = dialog(photo)
    estimate = wait_estimate(qtbot, made)
    real = Codec(weights_dir=weights).encode_file(photo, tmp_path / "m.jpg", rate=made.rate()).file_size
    assert estimate.exact and estimate.bytes == real
    assert "whole photo" in made.estimate_label.toolTip()
    assert np.isclose(made.rate(), RATE_PRESETS["MEDIUM"])


# --------------------------------------------------------------------------- time left, counts


class FakeClock:
    def __init__(self, monkeypatch):
        self.t = 100.0
        monkeypatch.setattr(time_left, "now", lambda: self.t)


def test_time_left_is_quiet_at_first_then_follows_the_measured_rate(monkeypatch):
    clock = FakeClock(monkeypatch)
    left = TimeLeft()
    left.start()
    clock.t += 1.0
    assert left.update(0.5) == ""  # the first seconds say nothing, however far along
    clock.t += 9.0
    assert left.update(0.01) == ""  # too little done to go on
    assert left.update(0.2) == "about 40 s left"  # 10 s for a fifth: 40 s for the rest
    clock.t += 10.0
    assert left.update(0.5) == "about 20 s left"
    assert left.update(1.0) == ""
    assert [time_left_text(s) for s in (3, 41, 150, 4000)] == [
        "a few seconds left",
        "about 45 s left",
        "about 2 min left",
        "about 1 h 7 min left",
    ]


def test_the_export_dialog_says_how_long_is_left(qtbot, dialog, photo, gate, monkeypatch):
    clock = FakeClock(monkeypatch)
    gate.hold()
    made = dialog(photo)
    qtbot.mouseClick(made.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(gate.holding, timeout=TIMEOUT_MS)
    assert made.time_label.isHidden()  # nothing measured yet
    clock.t += 1.0
    made.worker.progressed.emit(60, "Encoding\u2026")
    assert made.time_label.isHidden()  # not in the first seconds
    clock.t += 29.0
    made.worker.progressed.emit(60, "Encoding\u2026")
    assert made.time_label.isVisible() and made.time_label.text() == "about 20 s left"
    gate.release()
    qtbot.waitUntil(lambda: not made.isVisible(), timeout=TIMEOUT_MS)  # exported: the dialog closed
    assert made.time_label.isHidden()


def test_export_folder_counts_only_the_files_it_writes(qtbot, window, mixed_folder, tmp_path, gate, monkeypatch):
    """mixed: plain.jpg (its output exists), hyper.jpg (a HyperThumbnail), broken.jpg (unreadable), and two
    more photos: the questions and the progress count the two, and the time left shows as it goes."""
    save_photo(mixed_folder / "second.jpg", 80, 48, seed=3)
    save_photo(mixed_folder / "third.jpg", 80, 48, seed=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plain.hyper.jpg").write_bytes(b"an earlier export")
    asked, started = {}, []
    monkeypatch.setattr(
        batch_export,
        "choose_batch_settings",
        lambda parent, folder, count, left_out="": (
            asked.update(count=count, left_out=left_out) or (out, ExportOptions())
        ),
    )
    monkeypatch.setattr(
        batch_export,
        "ask_existing_outputs",
        lambda parent, existing, total: (
            asked.update(existing=[i.destination.name for i in existing], total=total) or "skip"
        ),
    )
    real_started = batch_export.BatchExport._file_started
    monkeypatch.setattr(
        batch_export.BatchExport, "_file_started", lambda run, *args: started.append(args) or real_started(run, *args)
    )
    clock = FakeClock(monkeypatch)
    gate.hold()
    made = window(mixed_folder / "plain.jpg")
    made.export_folder()
    run = made.batch_export
    assert asked["count"] == 3 and asked["left_out"] == "1 already a HyperThumbnail and 1 unreadable file are skipped"
    assert asked["existing"] == ["plain.hyper.jpg"] and asked["total"] == 3
    assert run.dialog.windowTitle() == "Export Folder" and run.dialog.label.text() == "Exporting 2 files to out\u2026"
    qtbot.waitUntil(gate.holding, timeout=TIMEOUT_MS)
    assert started == [(0, 2, "second.jpg")] and run.dialog.label.text() == "Exporting 1 of 2: second.jpg"
    clock.t += 15.0
    run.worker.progressed.emit(250)  # a quarter in 15 s
    assert run.dialog.time_label.text() == "about 45 s left"
    gate.release()
    qtbot.waitUntil(lambda: run.summary is not None, timeout=TIMEOUT_MS)
    assert started == [(0, 2, "second.jpg"), (1, 2, "third.jpg")]
    assert [e.source.name for e in run.summary.exported] == ["second.jpg", "third.jpg"]
    assert sorted(p.name for p, _ in run.summary.skipped) == ["hyper.jpg", "plain.jpg"]
    assert [p.name for p, _ in run.summary.failed] == ["broken.jpg"]
    assert run.summary.headline() == "2 exported, 2 skipped, 1 failed." and run.summary.total == 5
    assert (out / "plain.hyper.jpg").read_bytes() == b"an earlier export"
