"""Run ``hyperthumb`` commands and ``open_image`` on many files in ONE process, and report.

Used by test_fuzz.py as ``python tests/hostile_runner.py JOBS.json RESULTS.json``: importing
torch once and running every mutant here keeps a fuzz run of a hundred files under a minute,
while the test itself stays outside (its memory and its files are not the tested process's).
Each job is ``{"file", "argv"}`` (argv for ``app.cli.main``) or ``{"file", "open": true}``;
each result has the exit code, stdout, stderr, and for ``open`` the outcome's type name. An
exception escaping ``main`` is recorded with its traceback, so the test can show it; the results
end with this process's peak RSS (``VmHWM``: Linux keeps ``ru_maxrss`` across ``execve``, so a
large parent, pytest late in a full run, would be counted as this process's peak).
"""

import contextlib
import faulthandler
import io
import json
import resource
import sys
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
faulthandler.enable()


def run_main(argv: list[str]) -> dict:
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException:  # noqa: BLE001 -- exactly what must never happen
            code, err_text = -1, traceback.format_exc()
            err.write(err_text)
    return {"code": code, "stdout": out.getvalue()[-2000:], "stderr": err.getvalue()[-4000:]}


def run_open(path: str) -> dict:
    from app.codec.errors import CodecError
    from app.codec.files.document import open_image

    with warnings.catch_warnings(record=True) as caught:  # the codec's own filters still apply
        try:
            doc = open_image(path)
            outcome = {"outcome": "opened", "hyperthumbnail": doc.is_hyperthumbnail,
                       "preview": list(doc.preview.shape), "full_size": list(doc.full_size)}  # fmt: skip
        except CodecError as exc:
            outcome = {"outcome": "CodecError", "message": str(exc)[:500]}
        except BaseException as exc:  # noqa: BLE001
            outcome = {"outcome": type(exc).__name__, "traceback": traceback.format_exc()[-4000:]}
    outcome["warnings"] = [str(w.message)[:200] for w in caught]
    return outcome


def _peak_rss_kb() -> int:
    """This process's own high-water mark of resident memory, in kB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    results = []
    for job in jobs:
        result = run_open(job["file"]) if job.get("open") else run_main(job["argv"])
        results.append({**job, **result})
    peak_kb = _peak_rss_kb()
    Path(sys.argv[2]).write_text(json.dumps({"results": results, "peak_rss_kb": peak_kb}))


if __name__ == "__main__":
    main()
