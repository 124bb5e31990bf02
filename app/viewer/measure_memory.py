"""``python -m app.viewer.measure_memory FILE [--size 1600x1000] [--json]``

The viewer process's memory for one image: its peak RSS while the image opens and shows fitted
(the loader, the strip's picture, the view's pixmap), and what stays resident two seconds later.
Run it with the image alone in its folder: the viewer also opens a shown image's neighbours.
Each file in a process of its own (the peak is the process's high-water mark).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from app.viewer.playlist import Playlist
from app.viewer.window import MainWindow

SETTLE_S = 2.0
TIMEOUT_S = 120


def _memory_mb() -> dict[str, int]:
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line[:5]] = int(line.split()[1]) // 1024
    return found


def measure(path: Path, size: tuple[int, int]) -> dict:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    start = time.monotonic()
    window = MainWindow(Playlist.from_arguments([path]))  # opens the first image before it returns
    window.resize(*size)
    window.show()
    while not window.view.has_image() and not window.view.message() and time.monotonic() - start < TIMEOUT_S:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        time.sleep(0.01)
    shown = time.monotonic() - start
    settle = time.monotonic() + SETTLE_S
    while time.monotonic() < settle:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        time.sleep(0.01)
    memory = _memory_mb()
    result = {
        "file": str(path),
        "image_size": list(window.view.image_size()),
        "shown_after_s": round(shown, 2),
        "peak_rss_mb": memory.get("VmHWM"),
        "resident_after_mb": memory.get("VmRSS"),
        "message": window.view.message(),
    }
    window.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.viewer.measure_memory", description=__doc__.split("\n\n")[1])
    parser.add_argument("file", type=Path)
    parser.add_argument("--size", default="1600x1000", help="window size, WxH")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    result = measure(args.file, (width, height))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        w, h = result["image_size"]
        print(
            f"{args.file.name} {w}x{h}: shown after {result['shown_after_s']} s; viewer peak RSS "
            f"{result['peak_rss_mb']} MB, {result['resident_after_mb']} MB resident {SETTLE_S:g} s later"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
