"""``hyperthumb convert --engine ray``: the same job on a local Ray (``ray.init(num_cpus=2)``),
byte-identical to the local engine, resumable by what exists in DST, and whole after a worker
is killed mid-run. Skipped where Ray is not installed (it is the optional ``cluster`` extra;
CI installs it)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_convert import convert, make_library, outputs, run, save_photo

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from app.batch import ray_engine  # noqa: E402
from app.batch.convert import Settings  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one costs ~10 s on two cores)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def torch_threads():
    """The in-process conversions here run torch on one thread (as the actors do): put it back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def library(tmp_path, weights, capsys):
    return make_library(tmp_path, weights, capsys)  # test_convert's tree


def same_files(a: Path, b: Path) -> None:
    assert outputs(a) == outputs(b)
    for name in outputs(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_ray_writes_the_same_bytes_as_the_local_engine_and_the_same_report(
    local_ray, tmp_path, weights, library, capsys
):
    local, remote = tmp_path / "local", tmp_path / "ray"
    code, out, err = convert(capsys, weights, library, local, "--threads-per-worker", 1)
    assert code == 1, err
    report = tmp_path / "ray.json"
    code, out, err = convert(capsys, weights, library, remote, "--engine", "ray", "--report", report)  # 1 CPU, 1 thread
    assert code == 1, err  # the damaged image failed, as in the local engine
    assert outputs(remote) == ["top.jpg", "trip/a-png.jpg", "trip/a.jpg", "trip/day 2/deep.jpg"]
    same_files(local, remote)
    assert "converted 4, unchanged 0, skipped 2, failed 1" in out
    assert "failed: trip/broken.jpg: image is truncated or corrupt" in out
    assert "skipped: ht.jpg: already a HyperThumbnail" in out
    data = json.loads(report.read_text())
    assert data["engine"] == "ray" and data["counts"] == {"converted": 4, "unchanged": 0, "skipped": 2, "failed": 1}
    assert data["bytes_out"] == sum((remote / n).stat().st_size for n in outputs(remote))
    assert not list(remote.rglob("*.part")) and not (remote / ".hyperthumb-convert.sqlite3").exists()

    code, out, _ = convert(capsys, weights, library, remote, "--engine", "ray")  # what exists in DST is done
    assert "converted 0, unchanged 4, skipped 2, failed 1" in out
    before = (remote / "top.jpg").stat().st_mtime_ns
    time.sleep(0.01)
    save_photo(library / "top.png", 7)  # changed after its output was written
    code, out, _ = convert(capsys, weights, library, remote, "--engine", "ray", "--dry-run")
    # no journal: the HyperThumbnail and the damaged file are looked at again (and skipped, failed)
    assert "would convert 3 photos (2 new, 1 changed)" in out and "top.png -> top.jpg (changed)" in out
    code, out, _ = convert(capsys, weights, library, remote, "--engine", "ray")
    assert "converted 1, unchanged 3, skipped 2, failed 1" in out and (remote / "top.jpg").stat().st_mtime_ns > before


def test_a_killed_ray_worker_loses_no_photo_and_leaves_no_half_file(local_ray, tmp_path, weights):
    src, dst, reference = tmp_path / "src", tmp_path / "ray", tmp_path / "local"
    for i in range(10):
        save_photo(src / f"p{i:02d}.png", i, size=(160, 120))
    settings = Settings(rate=0.2, effort="fast", weights_dir=str(weights), threads=1)
    done: dict = {}
    job = threading.Thread(
        target=lambda: done.setdefault("summary", ray_engine.convert_with_ray(str(src), str(dst), settings, workers=2))
    )
    job.start()
    killed = None
    deadline = time.monotonic() + 240
    while job.is_alive() and killed is None and time.monotonic() < deadline:
        actors = _actor_pids()
        if actors and 1 <= len(outputs(dst)) < 8:  # mid-run: some photos written, most to come
            killed = actors[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    job.join(timeout=300)
    assert killed is not None, "no worker was caught mid-run"
    summary = done["summary"]
    assert summary.as_dict()["counts"]["converted"] == 10 and not summary.failed
    assert outputs(dst) == [f"p{i:02d}.jpg" for i in range(10)] and not list(dst.rglob("*.part"))
    from app.batch.convert import convert_tree

    convert_tree(src, reference, settings)
    same_files(reference, dst)


def _actor_pids() -> list[int]:
    """The processes of this test's Ray actors (their process titles name the map operator)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapBatches(ConvertActor)" in title:
                found.append(int(entry.name))
    return sorted(found)


def test_object_store_sources_and_outputs_go_through_the_filesystem_layer(tmp_path, weights):
    """An object store's path (no local file to hand to the codec, an upload to publish) exercised
    in-process with a pyarrow filesystem that is not the local one."""
    import pyarrow.fs as pafs

    src, bucket = tmp_path / "src", tmp_path / "bucket"
    save_photo(src / "album" / "one.png", 1)
    save_photo(src / "two.jpg", 2)
    (src / "note.txt").write_text("x")
    bucket.mkdir()
    store = pafs.SubTreeFileSystem(str(src), pafs.LocalFileSystem())
    assert ray_engine.list_tree(store, "") == (
        [("album/one.png", (src / "album" / "one.png").stat().st_size, (src / "album" / "one.png").stat().st_mtime_ns),
         ("two.jpg", (src / "two.jpg").stat().st_size, (src / "two.jpg").stat().st_mtime_ns)],
        ["note.txt"],
    )  # fmt: skip
    settings = Settings(rate=0.2, effort="fast", weights_dir=str(weights), threads=1)
    actor = ray_engine.ConvertActor.__new__(ray_engine.ConvertActor)
    actor.settings = settings
    actor.codec = ray_engine.load_codec(settings, 1)
    actor.src_fs, actor.src_root = store, ""
    actor.dst_fs, actor.dst_root = pafs.SubTreeFileSystem(str(bucket), pafs.LocalFileSystem()), ""
    reply = actor({"rel": ["album/one.png", "two.jpg"], "output": ["album/one.jpg", "two.jpg"]})
    results = [json.loads(r) for r in reply["result"]]
    assert [r["status"] for r in results] == ["done", "done"]
    assert sorted(p.relative_to(bucket).as_posix() for p in bucket.rglob("*")) == ["album", "album/one.jpg", "two.jpg"]
    from app.batch.convert import convert_tree

    convert_tree(src, tmp_path / "local", settings)
    same_files(tmp_path / "local", bucket)


def test_uris_need_the_ray_engine_and_a_missing_ray_is_one_line(tmp_path, weights, capsys, monkeypatch):
    code, _, err = run(capsys, "--weights", weights, "convert", "s3://bucket/photos", tmp_path / "dst")
    assert code == 1 and "needs --engine ray" in err and "Traceback" not in err
    monkeypatch.setattr(
        ray_engine, "_ray", lambda: (_ for _ in ()).throw(ray_engine.CodecError(ray_engine.INSTALL_HINT))
    )
    (tmp_path / "src").mkdir()
    save_photo(tmp_path / "src" / "a.png", 1)
    code, _, err = run(capsys, "--weights", weights, "convert", tmp_path / "src", tmp_path / "dst", "--engine", "ray")
    assert code == 1 and "pip install -e '.[cluster]'" in err and "Traceback" not in err
