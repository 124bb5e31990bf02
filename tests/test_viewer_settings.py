"""The settings table: defaults for missing or garbled values, round trips, and one home for every key."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QByteArray, QSettings  # noqa: E402

from app.viewer import settings as stored  # noqa: E402

VIEWER = Path(__file__).resolve().parents[1] / "app" / "viewer"
KEY_SHAPE = re.compile(r"^(session|view|window|recent|export)/\w+$")


@pytest.fixture
def ini(tmp_path):
    def make(text: str = "") -> QSettings:
        path = tmp_path / "viewer.ini"
        path.write_text(text)
        return QSettings(str(path), QSettings.Format.IniFormat)

    return make


def test_missing_values_read_as_defaults(ini):
    settings = ini()
    for setting in stored.TABLE:
        assert stored.read(settings, setting) == setting.default, setting.key


def test_garbled_values_read_as_defaults(ini):
    settings = ini(
        "[view]\nslideshow_s=abc\nstrip=maybe\nmetadata=2\nsort=by-colour\n"
        "[session]\nlast_folder=@Invalid()\nlast_image=relative/photo.jpg\n[window]\ngeometry=not bytes\n"
    )
    assert stored.read(settings, stored.LAST_IMAGE) == ""
    assert stored.read(settings, stored.SLIDESHOW_S) == stored.SLIDESHOW_S.default  # Qt alone answers 0.0
    assert stored.read(settings, stored.STRIP) is True
    assert stored.read(settings, stored.METADATA) is False
    assert stored.read(settings, stored.SORT) == "name"
    assert stored.read(settings, stored.GEOMETRY) is None


@pytest.mark.parametrize("seconds, expected", [("0", 4.0), ("1e9", 4.0), ("nan", 4.0), ("inf", 4.0), ("2.5", 2.5)])
def test_slideshow_interval_outside_its_range_reads_as_the_default(ini, seconds, expected):
    assert stored.read(ini(f"[view]\nslideshow_s={seconds}\n"), stored.SLIDESHOW_S) == expected


def test_values_round_trip(ini):
    settings = ini()
    values = {
        stored.LAST_FOLDER: "/photos/2026",
        stored.LAST_IMAGE: "/photos/2026/IMG_0042.jpg",
        stored.SORT: "date",
        stored.SLIDESHOW_S: 7.5,
        stored.STRIP: False,
        stored.METADATA: True,
        stored.GEOMETRY: QByteArray(b"\x01\x02geometry"),
        stored.RECENT: ["/a.jpg", "/b"],
    }
    for setting, value in values.items():
        stored.write(settings, setting, value)
    settings.sync()
    again = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    for setting, value in values.items():
        assert stored.read(again, setting) == value, setting.key


def test_a_one_item_recent_list_reads_as_a_list(ini):
    assert stored.read(ini("[recent]\npaths=/only.jpg\n"), stored.RECENT) == ["/only.jpg"]


def test_every_key_is_spelled_once_in_the_table():
    keys = [setting.key for setting in stored.TABLE]
    assert len(keys) == len(set(keys))
    assert all(KEY_SHAPE.match(key) for key in keys)
    elsewhere = []
    for path in sorted(VIEWER.rglob("*.py")):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_SHAPE.match(node.value):
                elsewhere.append(f"{path.name}: {node.value}")
    assert elsewhere == [], "settings keys belong in app/viewer/settings.py's table"
