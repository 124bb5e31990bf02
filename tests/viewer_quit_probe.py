"""Run by tests/test_viewer_look.py in a process of its own:

    python tests/viewer_quit_probe.py IMAGE DELAY_S

starts the viewer as ``main`` does (codec service included), presses Ctrl+Q on the window
DELAY_S seconds after the first paint (while the service may still be importing torch), and
prints ``quit-pressed <time.time()>``; the test measures how long the process takes to end.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.viewer import main as viewer_main
from app.viewer.window import MainWindow


def press_quit() -> None:
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
    print(f"quit-pressed {time.time():.6f}", flush=True)
    QTest.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)


if __name__ == "__main__":
    image, delay = sys.argv[1], float(sys.argv[2])
    app = QApplication([sys.argv[0]])
    QTimer.singleShot(round(delay * 1000), press_quit)
    sys.exit(viewer_main.main([sys.argv[0], image]))
