"""Where an export goes by default: beside the photo, unless that is no place for the user's files.

The bundled samples live inside the installation (``resources/samples``): a file saved there is
lost on the next reinstall, may not be writable, and is not where anyone looks for their photos.
Those sources, and folders the user cannot write to, default to the user's Pictures folder (or
home when there is none).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from app.viewer.paths import RESOURCES


def user_pictures_folder() -> Path:
    """The desktop's Pictures folder when it exists, else the home folder."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    if pictures and Path(pictures).is_dir():
        return Path(pictures)
    return Path.home()


def _inside(folder: Path, parent: Path) -> bool:
    try:
        folder.resolve().relative_to(parent.resolve())
    except (ValueError, OSError):
        return False
    return True


def save_folder_for(folder: Path) -> Path:
    """``folder`` itself when the user's exports belong there, else ``user_pictures_folder()``."""
    if _inside(folder, RESOURCES) or not os.access(folder, os.W_OK):
        return user_pictures_folder()
    return folder
