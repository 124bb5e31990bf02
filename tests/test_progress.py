"""The progress bar draws only on terminals and only for work that lasts over a second."""

import io

from app.progress import ProgressBar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_for_quick_work_and_for_pipes():
    tty = FakeTerminal()
    bar = ProgressBar("work", stream=tty)
    bar(1, 2)
    bar(2, 2)
    assert tty.getvalue() == ""
    pipe = io.StringIO()
    slow = ProgressBar("work", stream=pipe, delay=0.0)
    slow(1, 2)
    assert pipe.getvalue() == ""


def test_draws_percentages_on_a_terminal_for_slow_work():
    tty = FakeTerminal()
    bar = ProgressBar("work", stream=tty, delay=0.0, width=10)
    bar(1, 4)
    bar(4, 4)
    text = tty.getvalue()
    assert "[##--------]  25%" in text and "[##########] 100%" in text and text.endswith("\n")
