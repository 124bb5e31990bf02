"""Run by tests/test_viewer_service.py in a process of its own (pytest's imports torch):

    python tests/viewer_heartbeat_probe.py WEIGHTS_DIR HYPERTHUMBNAIL [ZOOM]

opens the viewer on the HyperThumbnail, and from the first paint on keeps a 10 ms timer on the
GUI thread (``GapMonitor``) through the start-up (the codec service starting, its torch import,
the weights check), a zoom until every visible tile has arrived, and the export dialog until its
size estimate is shown. Prints one JSON line: the longest gap between timer ticks, whether this
process ever imported torch, and when each step finished.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.viewer import codec_bridge, export_worker
from app.viewer.playlist import Playlist
from app.viewer.startup_timing import GapMonitor, call_after_first_paint
from app.viewer.window import MainWindow

TIMEOUT_S = 90


def main() -> int:
    weights, photo = Path(sys.argv[1]), Path(sys.argv[2])
    zoom = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    export_worker.ESTIMATE_SAMPLE_PIXELS = 256 * 256
    app = QApplication([])
    window = MainWindow(Playlist.from_arguments([photo]), weights_dir=weights)
    window.resize(1100, 760)
    state: dict = {"steps": {}}
    started = time.perf_counter()

    def step(name: str) -> None:
        state["steps"][name] = round(time.perf_counter() - started, 3)

    def first_paint() -> None:
        state["monitor"] = GapMonitor(window)
        step("first paint")

    def finish(error: str | None = None) -> None:
        monitor = state.get("monitor")
        gap, at = monitor.stop() if monitor else (float("nan"), float("nan"))
        result = {"max_gap_ms": round(gap * 1000, 1), "gap_ended_s": round(at, 3),
                  "ticks": monitor.ticks if monitor else 0, "torch_imported": "torch" in sys.modules,
                  "tiles": len(window.view.tile_keys()), "steps": state["steps"], "error": error,
                  "service_pid": codec_bridge.service().pid()}  # fmt: skip
        print(json.dumps(result), flush=True)
        window.close()
        app.quit()

    def poll() -> None:
        phase = state.get("phase", "weights")
        if time.perf_counter() - started > TIMEOUT_S:
            poller.stop()
            finish(f"timed out in phase {phase}")
        elif phase == "weights" and "Checking" not in window.export_actions[0].toolTip():
            step("weights checked")
            state["phase"] = "zoom"
            window.view.set_zoom(zoom)
        elif phase == "zoom" and window.reconstruction.status.state == "full":
            step("tiles arrived")
            state["phase"] = "export"
            window.export_current()
        elif phase == "export" and window.export_dialog.current_estimate() is not None:
            step("estimate shown")
            poller.stop()
            finish()

    call_after_first_paint(window.view.viewport(), first_paint, delay_ms=0)
    poller = QTimer(interval=20)
    poller.timeout.connect(poll)
    poller.start()
    window.show()
    app.aboutToQuit.connect(codec_bridge.stop_service)
    app.exec()
    codec_bridge.stop_service()
    return 0


if __name__ == "__main__":
    sys.exit(main())
