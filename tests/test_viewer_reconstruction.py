"""Zoom-triggered reconstruction as a user meets it: the preview at once, the decoder in a worker,
tiles that replace the preview pixel for pixel, the cache, cancelling, key C, and errors.

Every HyperThumbnail here is small (384x256) and made with tiny untrained test weights, so the
whole module runs in seconds on a CPU; the reference pixels come from the codec's own decoder.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.codec.api import Codec
from app.codec.files.orientation import to_display
from app.synthetic import photo_like
from app.viewer import codec_bridge
from app.viewer.original import original_candidates
from app.viewer.playlist import Playlist
from app.viewer.reconstruction import SETTLE_MS
from app.viewer.window import MainWindow

WIDTH, HEIGHT = 384, 256
TIMEOUT_MS = 20000


# --------------------------------------------------------------------------- files and helpers


@pytest.fixture(scope="module")
def photos(tmp_path_factory, weights) -> dict[str, Path]:
    """a.jpg, b.jpg, c.jpg: three different HyperThumbnails in one folder, and turned.jpg (EXIF 6)."""
    folder = tmp_path_factory.mktemp("photos")
    sources = tmp_path_factory.mktemp("sources")
    codec = Codec(weights_dir=weights)
    files = {}
    for seed, name in enumerate("abc"):
        source = sources / f"{name}.png"
        Image.fromarray(photo_like(WIDTH, HEIGHT, seed=seed + 1)).save(source)
        files[name] = codec.encode_file(source, folder / f"{name}.jpg").path
    turned = sources / "turned.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(photo_like(WIDTH, HEIGHT, seed=9)).save(turned, quality=98, exif=exif)
    files["turned"] = codec.encode_file(turned, sources / "turned-hyper.jpg").path
    return files


@pytest.fixture(scope="module")
def decoded(weights, photos) -> dict[str, np.ndarray]:
    """The codec's own full reconstruction of each file (stored orientation)."""
    codec = Codec(weights_dir=weights)
    return {name: codec.reconstructor(path).decode() for name, path in photos.items()}


class DecoderSpy:
    """Wraps ``codec_bridge.open_decoder``: records the threads, documents and boxes it sees."""

    def __init__(self):
        self.real = codec_bridge.open_decoder
        self.threads: set[int] = set()
        self.opened: list[str] = []
        self.decoded: list[tuple[str, object]] = []
        self.before_decode = None  # called (on the worker) with the file name before each decode
        self.error: Exception | None = None
        self.passes: list[bool] = []  # per decode: with the detail layer, or its base alone

    def __call__(self, document, weights_dir=None):
        self.threads.add(threading.get_ident())
        name = document.path.stem
        self.opened.append(name)
        if self.error is not None:
            raise self.error
        decoder = self.real(document, weights_dir)
        spy = self

        class Recorded:
            device, runtime = decoder.device, decoder.runtime

            def close(self):
                decoder.close()

            def decode(self, box, cancelled=None, detail=True):
                spy.threads.add(threading.get_ident())
                if spy.before_decode is not None and spy.before_decode(name):
                    cancelled = None  # as if past its last cancel check: the tile arrives, stale
                pixels = decoder.decode(box, cancelled, detail=detail)
                spy.decoded.append((name, box))
                spy.passes.append(detail)
                return pixels

        return Recorded()


@pytest.fixture
def spy(monkeypatch) -> DecoderSpy:
    recorder = DecoderSpy()
    monkeypatch.setattr(codec_bridge, "open_decoder", recorder)
    return recorder


@pytest.fixture
def viewer(qtbot, monkeypatch, weights):
    """Open a window on a path with the test weights; shown, but events not yet processed."""
    monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: None)

    def opener(path: Path, wait: bool = True, **options) -> MainWindow:
        window = MainWindow(Playlist.from_arguments([path]), weights_dir=options.pop("weights_dir", weights), **options)
        qtbot.addWidget(window)
        window.show()
        if wait:
            qtbot.waitExposed(window)
        return window

    return opener


def grab(window: MainWindow) -> np.ndarray:
    """The view's viewport as uint8 RGB."""
    image = window.view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return rows[:, : 3 * w].reshape(h, w, 3).copy()


def shown_photo(window: MainWindow) -> np.ndarray:
    """At 100% zoom with the whole photo in view: the displayed photo's pixels, as shown."""
    assert window.view.zoom() == pytest.approx(1.0)
    width, height = window.view.image_size()
    origin = window.view.mapFromScene(QPointF(0, 0))
    return grab(window)[origin.y() : origin.y() + height, origin.x() : origin.x() + width]


def upscaled_preview(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The thumbnail upscaled bilinearly to the photo's size (what the preview looks like)."""
    return np.asarray(Image.open(path).convert("RGB").resize(size, Image.BILINEAR))


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    diff = np.abs(a.astype(int) - b.astype(int))
    return float(diff.mean()), int(diff.max())


def wait_for(qtbot, window: MainWindow, state: str) -> None:
    qtbot.wait(3 * SETTLE_MS)  # let the view settle and the request go out first
    qtbot.waitUntil(lambda: window.reconstruction.status.state == state, timeout=TIMEOUT_MS)


def only_current_tiles(window: MainWindow) -> bool:
    keys = window.view.tile_keys()
    return all(key.document == window.reconstruction.key for key in keys)


# --------------------------------------------------------------------------- the preview first


def test_importing_the_viewer_does_not_import_torch():
    code = "import sys, app.viewer.main, app.viewer.reconstruction; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False).returncode == 0


def test_the_preview_shows_before_the_decoder_is_even_made(viewer, spy, photos):
    window = viewer(photos["a"], wait=False)
    assert spy.opened == [] and spy.decoded == []  # the preview is on screen, the decoder not made
    assert window.view.has_image() and window.view.zoom() == pytest.approx(1.0)
    mean, _ = difference(shown_photo(window), upscaled_preview(photos["a"], (WIDTH, HEIGHT)))
    assert mean < 3
    assert window.reconstruction_label.text().startswith(("Preview", "Reconstructing"))


def test_zooming_past_native_scale_decodes_in_a_worker_and_shows_the_decoder_output(
    viewer, spy, photos, decoded, qtbot
):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)  # 4 screen pixels per preview pixel: past the native scale
    wait_for(qtbot, window, "full")
    assert spy.opened == ["a"]  # one decoder for the document, reused for every tile
    assert spy.threads and threading.get_ident() not in spy.threads
    shown = shown_photo(window)
    assert difference(shown, decoded["a"])[1] <= 2
    assert difference(shown, upscaled_preview(photos["a"], (WIDTH, HEIGHT)))[0] > 4
    text = window.reconstruction_label.text()
    assert text.startswith("Reconstructed, full size") and "cpu" in text and "last decode" in text
    assert only_current_tiles(window)
    first, whole = window.reconstruction.first_piece_seconds, window.reconstruction.status.seconds
    assert first is not None and 0 < first <= whole  # `measure`'s first-piece time: the first visible tile


def test_tiles_are_drawn_in_display_orientation(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["turned"], tile_size=128)
    assert window.view.image_size() == (HEIGHT, WIDTH)
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    assert difference(shown_photo(window), to_display(decoded["turned"], 6))[1] <= 2


def test_below_native_scale_the_preview_stays(viewer, spy, photos, qtbot, monkeypatch):
    window = viewer(photos["a"])
    window.view.set_zoom(0.2)  # one preview pixel on 0.8 screen pixels
    qtbot.wait(5 * SETTLE_MS)
    assert window.reconstruction.status.state == "preview" and spy.opened == []
    assert window.reconstruction_label.text() == "Preview"
    assert window.view.screen_scale() == pytest.approx(0.2 * window.view.viewport().devicePixelRatioF())
    monkeypatch.setattr(window.view, "screen_scale", lambda: window.view.zoom() * 2)  # a HiDPI screen
    window.view.set_zoom(0.2)
    wait_for(qtbot, window, "full")
    assert spy.opened == ["a"]


def test_key_c_flips_between_the_preview_and_the_reconstruction(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert not window.view.tiles_visible()
    assert window.reconstruction_label.text().startswith("Upscaled preview")
    assert difference(shown_photo(window), upscaled_preview(photos["a"], (WIDTH, HEIGHT)))[0] < 3
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert window.view.tiles_visible()
    assert window.reconstruction_label.text().startswith("Reconstructed, full size")
    assert difference(shown_photo(window), decoded["a"])[1] <= 2


# --------------------------------------------------------------------------- cache and cancel


def scroll_to(window: MainWindow, x: float, y: float) -> None:
    """Scroll so the photo's display point (x, y) is at the viewport's centre."""
    window.view.centerOn(QPointF(x, y))


def test_panning_back_uses_the_cache(viewer, spy, photos, qtbot):
    window = viewer(photos["a"], tile_size=128)
    window.reconstruction.prefetch_ring = 0
    window.resize(420, 320)
    window.view.set_zoom(4.0)
    scroll_to(window, 0, 0)
    wait_for(qtbot, window, "full")
    first = len(spy.decoded)
    assert 0 < first < 6  # only what is on screen: a 3x2 grid of tiles is not all visible
    scroll_to(window, WIDTH, HEIGHT)
    wait_for(qtbot, window, "full")
    second = len(spy.decoded)
    assert second > first
    scroll_to(window, 0, 0)
    qtbot.wait(5 * SETTLE_MS)
    assert window.reconstruction.status.state == "full"
    assert len(spy.decoded) == second  # panning back decoded nothing
    assert len({box for _, box in spy.decoded}) == len(spy.decoded)  # and no tile was decoded twice


def test_tiles_around_the_view_are_decoded_next(viewer, spy, photos, qtbot):
    window = viewer(photos["a"], tile_size=128)
    window.reconstruction.prefetch_ring = 1
    window.resize(420, 320)
    window.view.set_zoom(4.0)
    scroll_to(window, 0, 0)  # only tile (0, 0) of the 3x2 grid is on screen
    qtbot.waitUntil(lambda: len(window.view.tile_keys()) == 4, timeout=TIMEOUT_MS)
    qtbot.wait(5 * SETTLE_MS)
    assert sorted((key.row, key.col) for key in window.view.tile_keys()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    first = spy.decoded[0][1]
    assert (first.y0, first.y1, first.x0, first.x1) == (0, 128, 0, 128)  # the visible tile first, then the ring
    assert sum(box.height * box.width for _, box in spy.decoded) == 4 * 128 * 128  # each tile decoded once
    assert len(spy.decoded) < 4  # the ring in pieces of several tiles, not tile by tile


def test_switching_image_while_decoding_leaves_no_stale_tiles(viewer, spy, photos, decoded, qtbot):
    release = threading.Event()
    started = threading.Event()

    def hold_a(name: str) -> bool:
        if name == "a":
            started.set()
            release.wait(10)
            return True  # a's tile finishes even though the user has moved on
        return False

    spy.before_decode = hold_a
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT_MS)
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    assert window.playlist.current == photos["b"]
    release.set()
    qtbot.waitUntil(lambda: any(name == "a" for name, _ in spy.decoded), timeout=TIMEOUT_MS)
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    qtbot.wait(5 * SETTLE_MS)
    assert window.view.tile_keys() and only_current_tiles(window)
    assert str(photos["b"]) in window.reconstruction.key[0]
    assert difference(shown_photo(window), decoded["b"])[1] <= 2


def wheel(window: MainWindow, steps: int) -> None:
    view = window.view
    cursor = QPoint(view.viewport().width() // 3, view.viewport().height() // 2)
    event = QWheelEvent(
        QPointF(cursor),
        QPointF(view.viewport().mapToGlobal(cursor)),
        QPoint(),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)


def test_rapid_zoom_and_stepping_neither_crash_nor_leave_stale_tiles(viewer, spy, photos, decoded, qtbot, tmp_path):
    window = viewer(photos["a"], tile_size=128)
    rng = random.Random(4)
    ctrl = Qt.KeyboardModifier.ControlModifier
    keys = [Qt.Key.Key_Plus, Qt.Key.Key_Minus, (Qt.Key.Key_1, ctrl), (Qt.Key.Key_0, ctrl), Qt.Key.Key_PageDown,
            Qt.Key.Key_PageUp, Qt.Key.Key_Space, Qt.Key.Key_Backspace, Qt.Key.Key_C]  # fmt: skip
    for i in range(300):
        if rng.random() < 0.2:
            wheel(window, rng.choice([-2, -1, 1, 2, 3]))
        else:
            key = rng.choice(keys)
            qtbot.keyClick(window.view, *(key if isinstance(key, tuple) else (key,)))
        if i % 25 == 0:
            qtbot.wait(rng.choice([1, SETTLE_MS, 4 * SETTLE_MS]))  # let some work start and some finish
        assert only_current_tiles(window)
    assert len(spy.opened) > 1  # the worker did start decoders along the way
    if not window.view.tiles_visible():
        qtbot.keyClick(window.view, Qt.Key.Key_C)
    qtbot.keyClick(window.view, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, window, "full")
    qtbot.wait(5 * SETTLE_MS)
    assert only_current_tiles(window)
    name = window.playlist.current.stem
    scroll_to(window, WIDTH / 2, HEIGHT / 2)
    assert difference(shown_photo(window), decoded[name])[1] <= 2


def test_a_plain_image_is_never_decoded(viewer, spy, qtbot, tmp_path):
    path = tmp_path / "plain.png"
    Image.fromarray(photo_like(96, 64, seed=3)).save(path)
    window = viewer(path)
    window.view.set_zoom(8.0)
    qtbot.wait(5 * SETTLE_MS)
    assert spy.opened == [] and window.view.tile_keys() == []
    assert window.reconstruction_label.text() == "Plain image"


# --------------------------------------------------------------------------- errors


def test_weights_missing_for_this_file_show_a_message(viewer, spy, photos, qtbot, tmp_path):
    other = tmp_path / "other-weights"
    make_weights(other, seed=1)  # a different hash than the files were made with
    window = viewer(photos["a"], weights_dir=other)
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "unavailable")
    assert "reconstruction unavailable" in window.info_label.text()
    assert "not installed" in window.info_label.text()
    assert window.view.notice().startswith("Reconstruction unavailable: ") and "not installed" in window.view.notice()
    assert window.reconstruction_label.text() == "Preview \u2014 reconstruction unavailable"
    assert "not installed" in window.reconstruction_label.toolTip()
    assert window.view.has_image() and window.view.tile_keys() == []
    window.view.set_zoom(2.0)
    qtbot.wait(5 * SETTLE_MS)
    assert spy.opened == ["a"]  # not asked again for the same document


def test_an_unexpected_decoder_error_is_a_message_not_a_crash(viewer, spy, photos, qtbot):
    spy.error = RuntimeError("out of device memory")
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "unavailable")
    assert "RuntimeError: out of device memory" in window.info_label.text()
    spy.error = None
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)  # the next image reconstructs again
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    assert "unavailable" not in window.info_label.text() and window.view.notice() == ""


# --------------------------------------------------------------------------- comparing (issue 12)
# With the split on, the screen shows the upscaled preview left of the line and the decoder's
# pixels right of it, at the same place.


def test_the_split_shows_preview_left_and_reconstruction_right(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    qtbot.keyClick(window.view, Qt.Key.Key_X)
    assert window.compare_action.isChecked() and window.view.split() == 0.5
    origin = window.view.mapFromScene(0, 0).x()
    line = round(window.view.viewport().width() * 0.5) - origin  # photo column under the line
    shown = shown_photo(window)
    preview = upscaled_preview(photos["a"], (WIDTH, shown.shape[0]))
    margin = 12  # the drawn line and its round handle
    assert difference(shown[:, : line - margin], preview[:, : line - margin])[0] < 3
    assert difference(shown[:, line + margin :], decoded["a"][:, line + margin :])[1] <= 2
    assert difference(shown[:, line + margin :], preview[:, line + margin :])[0] > 4


def test_the_line_can_be_dragged_and_follows_the_view(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    window.view.set_split(0.5)
    width = window.view.viewport().width()
    qtbot.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(width // 2, 40))
    qtbot.mouseMove(window.view.viewport(), QPoint(width // 4, 40))
    qtbot.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(width // 4, 40))
    assert abs(window.view.split() - 0.25) < 0.02
    origin = window.view.mapFromScene(0, 0).x()
    line = width // 4 - origin
    shown = shown_photo(window)
    assert difference(shown[:, line + 12 :], decoded["a"][:, line + 12 :])[1] <= 2
    qtbot.keyClick(window.view, Qt.Key.Key_X)  # on, then off again: reconstruction everywhere
    qtbot.keyClick(window.view, Qt.Key.Key_X)
    assert window.view.split() is None
    assert difference(shown_photo(window), decoded["a"])[1] <= 2


# --------------------------------------------------------------------------- files with a detail layer


def test_a_detail_layer_file_shows_its_base_first_then_the_detail(viewer, spy, qtbot, tmp_path_factory):
    """Preview, then the base reconstruction over the whole view, then the detail layer's tiles
    replacing it; the end state is the codec's own decode with the layer."""
    from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

    from app.codec.engine.weights import save_weights

    weights = tmp_path_factory.mktemp("detail-weights")
    save_weights(random_model(SMALL_DETAIL_CONFIG, seed=2), weights, "test-detail", trained=False)
    source = tmp_path_factory.mktemp("detail-sources") / "d.png"
    Image.fromarray(photo_like(WIDTH, HEIGHT, seed=4)).save(source)
    codec = Codec(weights_dir=weights)
    path = codec.encode_file(source, source.with_suffix(".jpg"), rate=1.0, effort="fast").path  # the layer, kept
    assert codec_bridge.has_detail_layer(codec_bridge.open_image(path))
    with_layer, base = codec.reconstructor(path).decode(), codec.reconstructor(path, detail=False).decode()
    window = viewer(path, weights_dir=weights)
    states = []
    window.reconstruction.statusChanged.connect(lambda status: states.append(status.state))
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    first_detail = spy.passes.index(True)
    assert first_detail > 0 and not any(spy.passes[:first_detail])  # every base piece before any detail piece
    assert "detailing" in states and states.index("detailing") < states.index("full")
    assert difference(shown_photo(window), with_layer)[1] <= 2
    assert difference(with_layer, base)[0] > 0.5  # the layer changed the picture (the test's decoder is random)
    assert all(not window.reconstruction._is_base(key) for key in window.view.tile_keys())  # base tiles replaced


def test_a_detail_layer_file_shown_fitted_has_its_decoder_opened_ahead_of_a_zoom(viewer, spy, qtbot, tmp_path_factory):
    """Shown fitted, a file with a detail layer gets its decoder opened on the worker with nothing
    decoded (the codec service then decodes its latent in the background); a zoom reuses it."""
    from codec_fixtures import SMALL_DETAIL_CONFIG, random_model

    from app.codec.engine.weights import save_weights

    weights = tmp_path_factory.mktemp("prepare-weights")
    save_weights(random_model(SMALL_DETAIL_CONFIG, seed=2), weights, "test-detail", trained=False)
    source = tmp_path_factory.mktemp("prepare-sources") / "p.png"
    Image.fromarray(photo_like(WIDTH, HEIGHT, seed=5)).save(source)
    path = Codec(weights_dir=weights).encode_file(source, source.with_suffix(".jpg"), rate=1.0, effort="fast").path
    window = viewer(path, weights_dir=weights)
    window.view.set_zoom(0.25)  # the thumbnail's own scale: the preview is all there is to show
    qtbot.waitUntil(lambda: spy.opened == ["p"], timeout=60_000)
    qtbot.wait(300)
    assert spy.decoded == [] and window.reconstruction.status.state == "preview"
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    assert spy.opened == ["p"] and spy.decoded  # the prepared decoder did the zoom's work


# --------------------------------------------------------------------------- comparing with the original (issue 23)


def test_compare_with_original_shows_the_source_left_and_the_reconstruction_right(
    viewer, spy, weights, photos, decoded, qtbot, tmp_path
):
    """An export beside its source (x.png -> x.hyper.jpg): the original photo left of the line,
    pixel for pixel, the reconstruction right of it; a photo of another size is refused."""
    source = tmp_path / "x.png"
    pixels = photo_like(WIDTH, HEIGHT, seed=5)
    Image.fromarray(pixels).save(source)
    export = Codec(weights_dir=weights).encode_file(source, tmp_path / "x.hyper.jpg").path
    (tmp_path / "x-png-2.hyper.jpg").write_bytes(b"")  # a folder export's name says its source too
    assert original_candidates(tmp_path / "x-png-2.hyper.jpg")[0] == source
    assert original_candidates(export) == [source]
    window = viewer(export)
    qtbot.waitUntil(lambda: "Compare With Original" in window.statusBar().currentMessage(), timeout=10_000)
    assert "x.png" in window.statusBar().currentMessage()  # offered, not forced
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    menu_item = next(
        action
        for top in window.menuBar().actions()
        for action in top.menu().actions()
        if action.text().startswith("Compare With &Original")
    )
    menu_item.trigger()  # as the user does: the menu passes ``checked``, which must not become the path
    assert window.compare_action.isChecked()
    assert window.view.has_original() and window.view.split() == 0.5
    origin = window.view.mapFromScene(0, 0).x()
    line = round(window.view.viewport().width() * 0.5) - origin
    shown = shown_photo(window)
    margin = 12
    assert difference(shown[:, : line - margin], pixels[:, : line - margin])[1] <= 1  # the original itself
    right = shown[:, line + margin :]
    assert difference(right, pixels[:, line + margin :])[0] > 2  # not the original: the reconstruction
    window.view.set_split(0.9)  # the line moves: more of the original
    line = round(window.view.viewport().width() * 0.9) - origin
    assert difference(shown_photo(window)[:, : line - margin], pixels[:, : line - margin])[1] <= 1

    Image.fromarray(photo_like(WIDTH // 2, HEIGHT // 2, seed=5)).save(tmp_path / "small.png")
    assert not window.compare_with_original(tmp_path / "small.png")
    assert "Cannot compare" in window.statusBar().currentMessage()
    assert f"{WIDTH}\u00d7{HEIGHT}" in window.statusBar().currentMessage()
