"""Test-session setup: Qt draws offscreen, so the tests run the same with or without a display;
and the viewer's settings file (recent files, panels) is a throwaway one, never the user's."""

import os

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt


@pytest.fixture(autouse=True, scope="session")
def _private_config_folder(tmp_path_factory):
    """QSettings (and anything else following XDG) writes under a temporary folder."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    os.environ["HYPERTHUMB_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # runtime calibrations


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A folder with tiny untrained test weights (test modules may define their own ``weights``)."""
    from codec_fixtures import make_weights

    directory = tmp_path_factory.mktemp("weights")
    make_weights(directory)
    return directory
