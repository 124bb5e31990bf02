"""The codec service as the viewer meets it: a child process that does all torch work, pixels that
cross cheaply, cancels that reach it, crashes that become messages and restarts, a prompt stop;
and the viewer's own process, which never imports torch and whose GUI thread never stalls.

Photos are small and the weights tiny and untrained, so the whole module takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.codec.api import Codec
from app.codec.errors import CodecError
from app.synthetic import photo_like
from app.viewer import codec_bridge
from app.viewer.codec_bridge import Box, Cancelled, ServiceStopped
from app.viewer.playlist import Playlist
from app.viewer.reconstruction import SETTLE_MS
from app.viewer.window import SERVICE_RESTARTED, MainWindow

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 30000
# The longest GUI-thread gap the heartbeat test accepts. The target is 100 ms; this 2-core CI
# machine, with a training run and other test sessions on it (load average 5), measured 41-111 ms
# over the start-up, the first tiles and the export estimate: scheduling, not the viewer (its
# slots took under 7 ms). It was 1.7-2.1 s when torch was imported in the viewer's process.
HEARTBEAT_BOUND_MS = 200


@pytest.fixture(scope="module")
def photo(tmp_path_factory, weights) -> Path:
    """A 1600x1200 HyperThumbnail: big enough for several pieces and a real estimate."""
    folder = tmp_path_factory.mktemp("service")
    source = folder / "source.png"
    Image.fromarray(photo_like(1600, 1200, seed=3)).save(source)
    return Codec(weights_dir=weights).encode_file(source, folder / "photo.jpg").path


def test_a_decode_through_the_service_is_the_codecs_own(weights, photo):
    document = codec_bridge.open_image(photo)
    decoder = codec_bridge.open_decoder(document, weights)
    box = Box(100, 612, 200, 712)
    pixels = decoder.decode(box)
    expected = Codec(weights_dir=weights).reconstructor(photo).decode(box)
    assert pixels.dtype == np.uint8 and pixels.shape == (512, 512, 3) and pixels.flags.writeable
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1
    assert codec_bridge.service().pid() not in (None, os.getpid())
    decoder.close()
    with pytest.raises(CodecError, match="decoder was closed") as closed:  # a sentence, not "KeyError"
        decoder.decode(box)
    assert type(closed.value) is CodecError


def test_service_errors_keep_their_kind(weights, tmp_path):
    """Errors cross the process boundary as data (a kind and a sentence) and come back as the
    same class: a missing photo is still an ImageLoadError in the viewer's process."""
    from app.codec.errors import ImageLoadError

    with pytest.raises(ImageLoadError, match="no such file"):
        codec_bridge.load_photo(tmp_path / "missing.png", weights)


def test_moving_pixels_between_the_processes_takes_milliseconds(weights, photo):
    """The round trip beyond the decode itself (request, the pixels' bytes, reply): measured on
    this CI machine about 0.8 ms for 512x512 and 5 ms for 1920x1080 (``python -m app.viewer.measure``)."""
    decoder = codec_bridge.open_decoder(codec_bridge.open_image(photo), weights)
    box = Box(0, 1200, 0, 1600)  # 5.8 MB of pixels
    decoder.decode(box)
    overheads = []
    for _ in range(5):
        start = time.perf_counter()
        decoder.decode(box)
        overheads.append(time.perf_counter() - start - decoder.last_seconds)
    decoder.close()
    assert sorted(overheads)[2] < 0.1  # generous: other jobs share the two cores


def test_a_cancel_returns_at_once_and_reaches_the_service(weights, photo):
    decoder = codec_bridge.open_decoder(codec_bridge.open_image(photo), weights)
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        decoder.decode(Box(0, 1200, 0, 1600), cancelled=lambda: time.perf_counter() - start > 0.01, tile=64)
    assert time.perf_counter() - start < 1.0
    assert decoder.decode(Box(0, 64, 0, 64)).shape == (64, 64, 3)  # the lane goes on with the next request
    decoder.close()


def test_the_photo_of_an_export_stays_in_the_service(weights, photo, tmp_path):
    handle = codec_bridge.load_photo(photo, weights)
    assert handle.size == (1600, 1200) and not hasattr(handle, "rgb")
    estimate = codec_bridge.estimate_size(handle, 0.5, weights, sample_pixels=128 * 128)
    assert estimate.bytes > 0 and not estimate.exact
    written = codec_bridge.encode_photo(handle, tmp_path / "again.jpg", weights, rate=0.5)
    assert written.path.is_file() and written.file_size == written.path.stat().st_size
    codec_bridge.stop_service()
    assert not codec_bridge.is_loaded(handle)  # a restarted service no longer has it
    with pytest.raises(ServiceStopped):
        codec_bridge.estimate_size(handle, 0.5, weights)


def test_a_killed_service_is_a_message_then_restarts(weights, photo):
    codec_bridge.weights_status(weights)
    pid = codec_bridge.service().pid()
    failures = []

    def decode():
        try:
            codec_bridge.open_decoder(codec_bridge.open_image(photo), weights).decode(Box(0, 1200, 0, 1600), tile=32)
        except ServiceStopped as exc:
            failures.append(str(exc))

    worker = threading.Thread(target=decode)
    worker.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    worker.join(10)
    assert not worker.is_alive()
    assert failures == ["the codec service stopped unexpectedly (killed by SIGKILL); it restarts with the next request"]
    assert codec_bridge.weights_status(weights) is not None  # answered by a new service (untrained weights)
    assert codec_bridge.service().pid() != pid


def test_stopping_the_service_is_prompt_even_mid_decode(weights, photo):
    decoder = codec_bridge.open_decoder(codec_bridge.open_image(photo), weights)
    failures = []

    def decode():
        try:
            decoder.decode(Box(0, 1200, 0, 1600), tile=32)
        except ServiceStopped as exc:
            failures.append(str(exc))

    worker = threading.Thread(target=decode)
    worker.start()
    time.sleep(0.2)
    start = time.perf_counter()
    codec_bridge.stop_service()
    worker.join(10)
    assert time.perf_counter() - start < 2.0 and failures == ["the codec service was stopped"]
    assert not codec_bridge.service().is_running()


def test_a_crash_while_reconstructing_is_a_message_in_the_window_and_the_next_look_restarts(
    qtbot, weights, photo, monkeypatch
):
    monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: None)
    window = MainWindow(Playlist.from_arguments([photo]), weights_dir=weights)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    restarts = []
    window.statusBar().messageChanged.connect(lambda text: text == SERVICE_RESTARTED and restarts.append(text))
    codec_bridge.service().start()
    pid = codec_bridge.service().pid()
    monkeypatch.setattr(codec_bridge.DocumentDecoder, "decode", _slow_then_real(codec_bridge.DocumentDecoder.decode))
    window.view.set_zoom(1.0)
    qtbot.waitUntil(lambda: _decoding.is_set(), timeout=TIMEOUT_MS)
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: window.reconstruction.status.state == "unavailable", timeout=TIMEOUT_MS)
    assert "the codec service stopped unexpectedly (killed by SIGKILL)" in window.view.notice()
    assert "restarts with the next request" in window.info_label.text()
    window.view.zoom_in()  # the next look asks again: a new service
    qtbot.wait(3 * SETTLE_MS)
    qtbot.waitUntil(lambda: window.reconstruction.status.state == "full", timeout=TIMEOUT_MS)
    assert window.view.notice() == "" and "unavailable" not in window.info_label.text()
    assert codec_bridge.service().pid() not in (None, pid)
    assert restarts == [SERVICE_RESTARTED] == ["The codec service had stopped unexpectedly; it has been restarted."]


_decoding = threading.Event()


def _slow_then_real(real):
    """The first decode waits for the service to be killed under it; later ones are the real thing."""

    def decode(self, box, cancelled=None, **options):
        if not _decoding.is_set():
            _decoding.set()
            return real(self, Box(0, 1200, 0, 1600), cancelled, tile=32)  # long enough to be killed in
        return real(self, box, cancelled, **options)

    return decode


def test_the_viewer_process_never_imports_torch_and_its_gui_thread_never_stalls(weights, photo, tmp_path):
    """In a process of its own (this one has imported torch): start-up, the weights check, a zoom
    until every visible tile has arrived, the export dialog's estimate; a 10 ms timer on the GUI
    thread all along."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HYPERTHUMB_CACHE=str(tmp_path / "cache"))
    env.pop("HYPERTHUMB_SERVICE_PRELOAD", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "viewer_heartbeat_probe.py"), str(weights), str(photo)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    result = json.loads(lines[-1])
    print("heartbeat probe:", result)
    assert result["error"] is None, result
    assert result["torch_imported"] is False
    assert result["tiles"] > 0 and result["ticks"] > 50
    assert result["max_gap_ms"] < HEARTBEAT_BOUND_MS, result
