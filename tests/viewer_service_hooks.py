"""Imported by the viewer's codec service in the export tests (``HYPERTHUMB_SERVICE_PRELOAD``):
a gate that holds the encoder in the service's process, driven by files the test creates.

While ``<gate>/hold-encode`` exists, each progress report of ``Codec.encode_photo`` first
creates ``<gate>/encoding`` and waits for ``hold-encode`` to go: the test then knows the
encoder is between two tiles, and whatever it does (cancel) reaches it before the next one.
"""

import os
import time
from pathlib import Path

from app.codec.api import Codec

GATE_ENV = "HYPERTHUMB_TEST_GATE"
_real_encode_photo = Codec.encode_photo


def _gated(progress):
    gate = Path(os.environ[GATE_ENV])

    def report(done: int, total: int) -> None:
        if (gate / "hold-encode").exists():
            (gate / "encoding").touch()
            deadline = time.monotonic() + 20
            while (gate / "hold-encode").exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        if progress is not None:
            progress(done, total)

    return report


def encode_photo(self, photo, destination, *, progress=None, **options):
    return _real_encode_photo(self, photo, destination, progress=_gated(progress), **options)


if os.environ.get(GATE_ENV):
    Codec.encode_photo = encode_photo
