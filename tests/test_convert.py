"""``hyperthumb convert``: a folder tree mirrored into HyperThumbnails, resumable by its journal."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from app.batch.convert import JOURNAL_NAME, output_candidates
from app.cli import main
from app.codec.files.reader import read_thumbnail
from app.synthetic import photo_like

ROOT = Path(__file__).resolve().parents[1]


def save_photo(path: Path, seed: int, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_like(*size, seed=seed)).save(path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def journal(dst: Path) -> dict[str, tuple]:
    with sqlite3.connect(dst / JOURNAL_NAME) as db:
        return {row[0]: row[1:] for row in db.execute("SELECT rel, status, output, reason FROM sources")}


def outputs(dst: Path) -> list[str]:
    return sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.jpg"))


@pytest.fixture
def library(tmp_path, weights, capsys):
    return make_library(tmp_path, weights, capsys)


def make_library(tmp_path, weights, capsys) -> Path:
    """Nested folders, a non-image, a HyperThumbnail already, a damaged image, a.png beside a.jpg."""
    src = tmp_path / "src"
    save_photo(src / "top.png", 1)
    save_photo(src / "trip" / "a.png", 2)
    save_photo(src / "trip" / "a.jpg", 3)
    save_photo(src / "trip" / "day 2" / "deep.tif", 4)
    (src / "notes.txt").write_text("not a photo")
    (src / "trip" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    code, _, err = run(capsys, "--weights", weights, "encode", save_photo(tmp_path / "x.png", 5), src / "ht.jpg")
    assert code == 0, err
    return src


def convert(capsys, weights, src, dst, *extra):
    return run(capsys, "--weights", weights, "convert", src, dst, "--effort", "fast", *extra)


def test_convert_mirrors_the_tree_and_reports_each_file(tmp_path, weights, library, capsys):
    dst = tmp_path / "dst"
    report = tmp_path / "report.json"
    code, out, err = convert(capsys, weights, library, dst, "--report", report)
    assert code == 1, err  # the damaged image failed; every other file was done
    assert outputs(dst) == ["top.jpg", "trip/a-png.jpg", "trip/a.jpg", "trip/day 2/deep.jpg"]
    for name in outputs(dst):
        thumbnail = read_thumbnail(dst / name)
        assert (thumbnail.marker.width, thumbnail.marker.height) == (64, 48)
    assert "converted 4, unchanged 0, skipped 2, failed 1" in out
    assert "skipped: notes.txt: not an image file" in out and "skipped: ht.jpg: already a HyperThumbnail" in out
    assert "failed: trip/broken.jpg: image is truncated or corrupt" in out
    assert "mean " in out and " bpp" in out

    data = json.loads(report.read_text())
    assert data["counts"] == {"converted": 4, "unchanged": 0, "skipped": 2, "failed": 1}
    files = {f["path"]: f for f in data["files"]}
    assert files["trip/a.png"]["output"] == "trip/a-png.jpg" and files["trip/a.jpg"]["output"] == "trip/a.jpg"
    assert files["trip/broken.jpg"]["status"] == "failed" and "corrupt" in files["trip/broken.jpg"]["reason"]
    assert data["bytes_out"] == sum((dst / n).stat().st_size for n in outputs(dst))
    assert data["mean_bpp"] > 0

    rows = journal(dst)
    assert rows["trip/a.png"][:2] == ("done", "trip/a-png.jpg") and rows["ht.jpg"][0] == "skipped"
    assert rows["trip/broken.jpg"][0] == "failed" and "notes.txt" not in rows

    csv_report = tmp_path / "report.csv"
    code, out, _ = convert(capsys, weights, library, dst, "--report", csv_report)
    assert code == 1 and "converted 0, unchanged 4, skipped 2, failed 1" in out  # a re-run does nothing
    lines = csv_report.read_text().splitlines()
    assert lines[0] == "path,status,output,bytes_in,bytes_out,bpp,reason" and len(lines) == 1 + 7


def test_a_rerun_redoes_only_changed_new_and_deleted_outputs(tmp_path, weights, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        save_photo(src / f"p{i}.png", i)
    code, out, err = convert(capsys, weights, src, dst)
    assert code == 0, err
    assert "converted 3" in out
    before = {n: (dst / n).read_bytes() for n in outputs(dst)}

    code, out, _ = convert(capsys, weights, src, dst)
    assert code == 0 and "converted 0, unchanged 3" in out
    assert {n: (dst / n).read_bytes() for n in outputs(dst)} == before

    os.utime(src / "p0.png", ns=(1, 10**18))  # touched, same bytes: re-stamped, not redone
    save_photo(src / "p1.png", 11)  # changed content
    (dst / "p2.jpg").unlink()  # a finished output deleted
    save_photo(src / "sub" / "new.png", 12)
    code, out, err = convert(capsys, weights, src, dst)
    assert code == 0, err
    assert "converted 3, unchanged 1" in out
    assert (dst / "p0.jpg").read_bytes() == before["p0.jpg"]
    assert (dst / "p1.jpg").read_bytes() != before["p1.jpg"]
    assert outputs(dst) == ["p0.jpg", "p1.jpg", "p2.jpg", "sub/new.jpg"]
    code, out, _ = convert(capsys, weights, src, dst)
    assert "converted 0, unchanged 4" in out


def test_an_existing_file_in_dst_is_never_overwritten(tmp_path, weights, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    save_photo(src / "a.png", 1)
    dst.mkdir()
    (dst / "a.jpg").write_bytes(b"the user's own file")
    code, _, err = convert(capsys, weights, src, dst)
    assert code == 0, err
    assert (dst / "a.jpg").read_bytes() == b"the user's own file"
    assert read_thumbnail(dst / "a-png.jpg").marker.width == 64


def test_output_names_take_the_source_suffix_then_a_number():
    names = output_candidates("x/a.PNG")
    assert [next(names) for _ in range(4)] == ["x/a.jpg", "x/a-png.jpg", "x/a-png-2.jpg", "x/a-png-3.jpg"]


def test_dry_run_writes_nothing(tmp_path, weights, library, capsys):
    dst = tmp_path / "dst"
    code, out, _ = convert(capsys, weights, library, dst, "--dry-run", "--show", "2")
    assert code == 0
    assert "would convert 6 photos (6 new)" in out  # the HyperThumbnail is found only when opened
    assert "  ht.jpg -> ht.jpg (new)" in out and "... and 4 more" in out and "skipped 1" in out
    assert not dst.exists()

    code, _, _ = convert(capsys, weights, library, dst)
    journal_bytes = (dst / JOURNAL_NAME).read_bytes()
    listing = sorted(p.name for p in dst.rglob("*"))
    (library / "trip" / "new.png").write_bytes((library / "top.png").read_bytes())
    code, out, _ = convert(capsys, weights, library, dst, "--dry-run")
    assert code == 0 and "would convert 1 photos (1 new)" in out and "failed in earlier runs 1" in out
    assert (dst / JOURNAL_NAME).read_bytes() == journal_bytes and sorted(p.name for p in dst.rglob("*")) == listing


def test_bad_usage_is_one_line(tmp_path, weights, capsys):
    code, _, err = convert(capsys, weights, tmp_path / "missing", tmp_path / "dst")
    assert code == 1 and "not a folder" in err
    (tmp_path / "src").mkdir()
    code, _, err = convert(capsys, weights, tmp_path / "src", tmp_path / "dst", "--report", tmp_path / "r.txt")
    assert code == 1 and ".json or .csv" in err


def test_a_run_killed_at_random_moments_resumes_to_one_whole_output_each(tmp_path, weights):
    """SIGKILL of the whole run (parent and its workers' parent) three times, then to the end."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    count = 60
    for i in range(count):
        save_photo(src / f"f{i % 4}" / f"p{i:02d}.png", i)
    command = [sys.executable, "-m", "app", "--weights", str(weights), "convert", str(src), str(dst)]
    command += ["--effort", "fast", "--workers", "2"]
    rng = random.Random(22)
    kills = 0
    for _ in range(3):
        done_before = len(outputs(dst)) if dst.exists() else 0
        target = done_before + rng.randint(1, 8)
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if dst.exists() and len(outputs(dst)) >= target:
                time.sleep(rng.uniform(0, 0.3))  # anywhere: mid-photo, mid-publish, mid-record
                process.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        process.wait(timeout=60)
    assert kills >= 2  # the run was really cut (60 photos take longer than the kills)
    time.sleep(0.5)  # the orphaned workers notice their parent is gone and exit
    final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    expected = sorted(f"f{i % 4}/p{i:02d}.jpg" for i in range(count))
    assert outputs(dst) == expected  # each exactly once: no a-png.jpg duplicates
    assert not [p for p in dst.rglob("*") if p.name.endswith(".part")]
    for name in expected:
        assert read_thumbnail(dst / name).marker.width == 64
    rows = journal(dst)
    assert len(rows) == count and {row[0] for row in rows.values()} == {"done"}
    assert sorted(row[1] for row in rows.values()) == expected
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"converted 0, unchanged {count}" in again.stdout


def test_ctrl_c_stops_the_workers_cleanly_and_the_same_command_goes_on(tmp_path, weights):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(40):
        save_photo(src / f"p{i:02d}.png", i)
    command = [sys.executable, "-m", "app", "--weights", str(weights), "convert", str(src), str(dst)]
    command += ["--effort", "fast", "--workers", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline and not (dst.exists() and outputs(dst)):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert process.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    assert not [p for p in dst.rglob("*") if p.name.endswith(".part")]  # the workers cleaned up
    rows = journal(dst)
    assert {n for n in outputs(dst)} >= {row[1] for row in rows.values() if row[0] == "done"}
    final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert outputs(dst) == [f"p{i:02d}.jpg" for i in range(40)]
