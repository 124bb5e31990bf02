"""About how long a long export has left, from the progress measured so far ("about 40 s left").

Nothing is said for the first ``QUIET_S`` seconds or before ``MIN_DONE`` of the work is done (too
little to go on); after that the rate is the average since the start, so one slow tile does not
make the estimate jump. Seconds are rounded to 5 s, minutes to whole minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

QUIET_S = 2.0  # no estimate in the first seconds: the first steps (reading, loading) say little
MIN_DONE = 0.02  # nor before this share of the work is done


def now() -> float:
    """The clock (seconds; tests replace it)."""
    return time.monotonic()


def time_left_text(seconds: float) -> str:
    """ "about 40 s left", "about 3 min left", "about 1 h 20 min left"; "a few seconds left" under 5 s."""
    if seconds < 5:
        return "a few seconds left"
    if seconds < 60:
        return f"about {min(55, 5 * math.ceil(seconds / 5))} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {max(1, minutes)} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


class TimeLeft:
    """Feed it the share done (0..1) as the work goes; ``text`` is '' until there is enough to go on."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self._clock = clock or (lambda: now())  # looked up at each call: tests may replace ``now``
        self._start: float | None = None
        self.text = ""

    def start(self) -> None:
        self._start, self.text = self._clock(), ""

    def update(self, done: float) -> str:
        """The text for ``done`` of the work finished now (also kept in ``text``)."""
        if self._start is None:
            self.start()
        elapsed = self._clock() - self._start
        if elapsed < QUIET_S or done < MIN_DONE or done >= 1:
            self.text = ""
        else:
            self.text = time_left_text(elapsed * (1 - done) / done)
        return self.text
