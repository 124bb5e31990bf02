"""Every setting the viewer keeps, in one table: its key, type, default and allowed values.

Settings live in an INI file in the user's configuration folder (``~/.config/HyperThumbnail/
viewer.ini`` on Linux); tests hand the window a QSettings of their own. Reading goes through
``read``, which answers the default for a value that is missing, of the wrong type or out of
range (a hand-edited file with ``slideshow_s=abc`` would otherwise give a 0-second slideshow),
so no other module spells a key or a default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from app.viewer.slideshow import DEFAULT_INTERVAL_S, MAX_INTERVAL_S, MIN_INTERVAL_S
from app.viewer.sorting import SORT_ORDERS

ORGANIZATION = "HyperThumbnail"
SETTINGS_NAME = "viewer"


@dataclass(frozen=True, eq=False)  # compared and hashed as itself: each entry is one key
class Setting:
    """One entry of the settings file. ``valid(value)`` says whether a stored value may be used."""

    key: str
    kind: type
    default: Any
    meaning: str
    valid: Callable[[Any], bool] = lambda value: True


def _in_range(low: float, high: float) -> Callable[[Any], bool]:
    return lambda value: low <= value <= high


LAST_FOLDER = Setting(
    "session/last_folder", str, "", "the folder of the photo shown at the last close; opened when started bare"
)
LAST_IMAGE = Setting(
    "session/last_image",
    str,
    "",
    "the photo shown at the last close; shown again when its folder reopens at start-up",
    lambda value: value == "" or Path(value).is_absolute(),
)
SORT = Setting("view/sort", str, "name", "the folder's order: " + ", ".join(SORT_ORDERS), SORT_ORDERS.__contains__)
SLIDESHOW_S = Setting(
    "view/slideshow_s",
    float,
    DEFAULT_INTERVAL_S,
    "seconds per image in a slideshow",
    _in_range(MIN_INTERVAL_S, MAX_INTERVAL_S),
)
STRIP = Setting("view/strip", bool, True, "the thumbnail strip is shown")
METADATA = Setting("view/metadata", bool, False, "the metadata panel is shown")
NAVIGATOR = Setting("view/navigator", bool, True, "the navigator map shows while zoomed in")
GEOMETRY = Setting("window/geometry", QByteArray, None, "the window's size and place (Qt's saveGeometry)")
STATE = Setting("window/state", QByteArray, None, "where the panels are docked (Qt's saveState)")
RECENT = Setting("recent/paths", list, (), "File > Open Recent, most recent first")

TABLE = (LAST_FOLDER, LAST_IMAGE, SORT, SLIDESHOW_S, STRIP, METADATA, NAVIGATOR, GEOMETRY, STATE, RECENT)


def open_settings() -> QSettings:
    """The user's viewer settings."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, SETTINGS_NAME)


def read(settings: QSettings, setting: Setting) -> Any:
    """The stored value, or the default when there is none or it is not a usable ``setting.kind``."""
    raw = settings.value(setting.key)
    if raw is None:
        return setting.default
    value = _convert(raw, setting.kind)
    if value is None or not setting.valid(value):
        return setting.default
    return value


def write(settings: QSettings, setting: Setting, value: Any) -> None:
    settings.setValue(setting.key, value)


def _convert(raw: Any, kind: type) -> Any:
    """``raw`` as QSettings' INI backend gives it back (often a string) converted to ``kind``, or None."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        return {"true": True, "1": True, "false": False, "0": False}.get(text)
    if kind is float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None
        return value if value == value and abs(value) != float("inf") else None
    if kind is str:
        return raw if isinstance(raw, str) else None
    if kind is list:
        if isinstance(raw, str):  # QSettings stores a one-item list as a plain string
            return [raw]
        return list(raw) if isinstance(raw, list | tuple) else None
    return raw if isinstance(raw, kind) else None
