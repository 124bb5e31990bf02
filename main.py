"""Start the viewer from a checkout: ``python main.py [FILE_OR_FOLDER ...]`` (no argument: the samples)."""

import sys

from app.viewer.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
