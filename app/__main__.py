"""``python -m app`` is the ``hyperthumb`` command."""

import sys

from app.cli import main

sys.exit(main())
