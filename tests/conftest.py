"""Test-session setup: Qt draws offscreen, so the tests run the same with or without a display."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt
