"""``python -m app.viewer.measure [FILE] [--size 1100x760] [--zoom 1] [--repeat 5] [--json]``

How long the viewer takes to bring the region on screen to full resolution, against the codec's
own ``Reconstructor.decode`` of the same region in the same process (the codec service's, where
the viewer's decodes run), and what moving pixels between the processes costs.

The viewer's time is the status bar's "last decode": from the request (the view settled) to the
last visible tile drawn; it is measured ``--repeat`` times on the same view, the tile cache
emptied in between and the prefetch ring off (it is decoded after the visible tiles, and would
only delay the next repetition). The API is timed on two regions: exactly what is visible, and
the visible tiles' rectangle (what the viewer decodes: the tile grid rounds the view out).
Medians throughout: the CI machine has two cores and other work on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from app.viewer import codec_bridge
from app.viewer.codec_bridge import Box
from app.viewer.paths import SAMPLES
from app.viewer.playlist import Playlist
from app.viewer.reconstruction_worker import bounding_box
from app.viewer.startup_timing import GapMonitor
from app.viewer.window import MainWindow

TIMEOUT_S = 300


def _wait(app: QApplication, condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        time.sleep(0.002)


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _api_times(decoder, box: Box, repeat: int) -> tuple[list[float], list[float]]:
    """(seconds of ``Reconstructor.decode`` in the service, seconds of the whole round trip) per run."""
    decoder.decode(box)  # warm-up: the first run of a shape is slower in every runtime
    inside, wall = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        decoder.decode(box)
        wall.append(time.perf_counter() - start)
        inside.append(decoder.last_seconds)
    return inside, wall


def measure(path: Path, size: tuple[int, int], zoom: float, repeat: int, weights_dir=None) -> dict:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow(Playlist.from_arguments([path]), weights_dir=weights_dir)
    window.resize(*size)
    window.show()
    monitor = GapMonitor(window)
    _wait(app, lambda: "Checking" not in window.export_actions[0].toolTip(), "the weights check")
    recon = window.reconstruction
    recon.prefetch_ring = 0
    _wait(app, lambda: recon.status.state in ("full", "preview", "unavailable"), "the fitted view")
    window.view.set_zoom(zoom)
    window.view.centerOn(window.view.sceneRect().center())
    recon.update()
    _wait(app, lambda: recon.status.state in ("full", "unavailable"), "the first reconstruction")
    if recon.status.state == "unavailable":
        raise RuntimeError(recon.status.reason)
    first = recon.status.seconds
    viewer, pieces = [], []
    for _ in range(repeat):
        for key in recon.cache.clear():
            window.view.remove_tile(key)
        recon.update()
        _wait(app, lambda: recon.status.state == "full" and recon.status.seconds is not None, "the reconstruction")
        viewer.append(recon.status.seconds)
        pieces.append(recon.first_piece_seconds)
    gap, _ = monitor.stop()
    service_pid = codec_bridge.service().call("info")["pid"]
    service_viewing = _peak_rss_mb(service_pid)  # what the viewer's own decodes (and the prefetch) took
    visible = recon._visible_stored_box()
    tiles = bounding_box(recon._grid.box(key.row, key.col) for key in recon._visible)
    document = recon.document
    window.close()

    decoder = codec_bridge.open_decoder(document, weights_dir)
    exact, exact_wall = _api_times(decoder, visible, repeat)
    rounded, _ = _api_times(decoder, tiles, repeat)
    moves = {}
    width, height = document.full_size
    for name, (w, h) in {"512x512": (512, 512), "1920x1080": (1920, 1080)}.items():
        if w <= width and h <= height:
            inside, wall = _api_times(decoder, Box(0, h, 0, w), repeat)
            moves[name] = round(statistics.median(b - a for a, b in zip(inside, wall)) * 1000, 2)
    info = codec_bridge.service().call("info")
    service_peak = _peak_rss_mb(info["pid"])
    decoder.close()
    codec_bridge.stop_service()
    viewer_ms = _median_ms(viewer)
    return {
        "file": str(path), "full_size": list(document.full_size), "window": list(size), "zoom": zoom, "repeat": repeat,
        "visible_box": [visible.x0, visible.y0, visible.width, visible.height],
        "tiles_box": [tiles.x0, tiles.y0, tiles.width, tiles.height], "tiles": len(recon._visible),
        "decoder": recon.status.device, "service_torch_threads": info["torch_threads"],
        "viewer_first_ms": round(first * 1000, 1), "viewer_ms": viewer_ms, "viewer_runs_ms": [round(v * 1000, 1) for v in viewer],
        "first_piece_ms": _median_ms(pieces), "service_peak_rss_mb": service_peak,
        "service_peak_rss_viewing_mb": service_viewing, "viewer_peak_rss_mb": _peak_rss_mb(os.getpid()),
        "api_visible_ms": _median_ms(exact), "api_tiles_ms": _median_ms(rounded),
        "ratio_vs_visible": round(viewer_ms / _median_ms(exact), 2), "ratio_vs_tiles": round(viewer_ms / _median_ms(rounded), 2),
        "round_trip_overhead_ms": round(statistics.median(b - a for a, b in zip(exact, exact_wall)) * 1000, 2),
        "pixel_round_trip_overhead_ms": moves, "longest_gui_gap_ms": round(gap * 1000, 1),
        "torch_in_viewer_process": "torch" in sys.modules,
    }  # fmt: skip


def _peak_rss_mb(pid: int) -> int | None:
    """A process's peak resident set (Linux: VmHWM), None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def report(result: dict) -> str:
    r = result
    lines = [
        f"{Path(r['file']).name} {r['full_size'][0]}x{r['full_size'][1]}, window {r['window'][0]}x{r['window'][1]}, "
        f"zoom {r['zoom']:g}, decoder {r['decoder']} ({r['service_torch_threads']} torch threads in the service)",
        f"visible region {r['visible_box'][2]}x{r['visible_box'][3]} at ({r['visible_box'][0]}, {r['visible_box'][1]}); "
        f"{r['tiles']} tiles = {r['tiles_box'][2]}x{r['tiles_box'][3]}",
        f"viewer, request to last visible tile: {r['viewer_ms']} ms median of {r['repeat']} {r['viewer_runs_ms']} "
        f"(first, decoder made: {r['viewer_first_ms']} ms); to the first visible piece: {r['first_piece_ms']} ms",
        f"peak RSS: codec service {r['service_peak_rss_viewing_mb']} MB while viewing, "
        f"{r['service_peak_rss_mb']} MB after the API's whole-region decodes; viewer {r['viewer_peak_rss_mb']} MB",
        f"Reconstructor.decode, visible region: {r['api_visible_ms']} ms -> ratio {r['ratio_vs_visible']}",
        f"Reconstructor.decode, visible tiles:  {r['api_tiles_ms']} ms -> ratio {r['ratio_vs_tiles']}",
        f"a decode's round trip beyond the decode itself: {r['round_trip_overhead_ms']} ms (visible region); "
        + ", ".join(f"{k}: {v} ms" for k, v in r["pixel_round_trip_overhead_ms"].items()),
        f"longest GUI-thread gap meanwhile: {r['longest_gui_gap_ms']} ms; torch imported by the viewer's process: "
        f"{r['torch_in_viewer_process']}",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.viewer.measure", description=__doc__.split("\n\n")[1])
    parser.add_argument("file", nargs="?", default=str(SAMPLES / "garden.jpg"))
    parser.add_argument("--size", default="1100x760", help="window size, WxH")
    parser.add_argument("--zoom", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--weights", default=None, help="weights folder (default: the project's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    width, height = (int(v) for v in args.size.lower().split("x"))
    result = measure(Path(args.file), (width, height), args.zoom, args.repeat, args.weights)
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    code = main()
    # Interpreter shutdown after a measurement aborts in an extension's finaliser ("none_dealloc",
    # a reference-count error in PySide6's objects, after everything is written): leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
