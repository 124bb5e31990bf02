"""``hyperthumb convert SRC DST --engine ray``: the same conversion on a Ray cluster (Ray Data).

Why Ray Data: a library of millions of photos needs many machines, and Ray Data already does
what a cluster batch needs: it streams the list of paths through an actor pool (one model per
actor, loaded once in ``__init__``), schedules actors where CPUs or GPUs are free, retries a task
whose worker died and restarts the actor. The same code runs on a laptop (``ray.init()`` starts a
local Ray) and on a cluster (``--address``); docs/SCALE.md says how.

What stays the local engine's (``convert.py``), so that both engines write byte-identical files
for the same inputs and options: the source listing and its order, the output names
(``output_candidates``: collisions among the sources resolved in name order) and ``convert_one``,
the function that turns one photo into one file.

What differs: there is no journal (a cluster's workers cannot share one SQLite file). Its role is
played by what exists in DST: an output that exists and is not older than its source is
finished, and a re-run skips it (``--force`` redoes it). An output name that is already taken in
DST is therefore taken to be this source's output, which is why the Ray engine wants a DST of its
own. A failed photo is a line in the report and is tried again by the next run.

Locations are pyarrow filesystems: a local path, or an object-store URI (``s3://bucket/photos``,
``gs://...``, anything ``pyarrow.fs.FileSystem.from_uri`` takes). Publishing is atomic on both: a
local output is written as a ``.part`` file and renamed (``files.atomic``; stale parts of dead
workers are removed at the start and the end of the run); an object is uploaded in one stream and
appears whole when the upload completes, or not at all. Sources on an object store are copied to
the worker's temporary folder first.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from app.batch.convert import (
    IMAGE_SUFFIXES,
    Entry,
    Plan,
    Settings,
    Summary,
    Task,
    _entry,
    _path_order,
    convert_one,
    load_codec,
    output_candidates,
    remove_stale_parts_under,
    scan,
)
from app.codec.errors import CodecError, shorten

INSTALL_HINT = "the Ray engine needs the cluster extra: pip install -e '.[cluster]'"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise CodecError(INSTALL_HINT) from None
    return ray


# ---------------------------------------------------------------------------------------------- locations


def is_uri(location: str) -> bool:
    return "://" in str(location)


def filesystem(location: str):
    """(pyarrow filesystem, root path in it) for a local folder or an object-store URI."""
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), str(Path(location).absolute())
    try:
        return pafs.FileSystem.from_uri(str(location))
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises several kinds for a bad URI
        raise CodecError(f"cannot open {shorten(location, 200)}: {shorten(exc, 200)}") from None


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if root else rel


def _relative(path: str, root: str) -> str:
    return PurePosixPath(path).relative_to(PurePosixPath(root)).as_posix() if root else path.lstrip("/")


def _is_local(fs) -> bool:
    import pyarrow.fs as pafs

    return isinstance(fs, pafs.LocalFileSystem)


def list_tree(fs, root: str) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(images as (rel, size, mtime_ns), other files' rel) under ``root``, in name order."""
    import pyarrow.fs as pafs

    images, others = [], []
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        raise CodecError(f"cannot list {shorten(root, 200)}: {shorten(exc, 200)}") from None
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = _relative(info.path, root)
        if PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES:
            images.append((rel, info.size or 0, info.mtime_ns or 0))
        else:
            others.append(rel)
    images.sort(key=lambda item: _path_order(item[0]))
    others.sort(key=_path_order)
    return images, others


def _existing_outputs(fs, root: str) -> dict[str, int]:
    """casefolded rel of every file in DST -> its mtime_ns (empty when DST does not exist yet)."""
    import pyarrow.fs as pafs

    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        return {}
    found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return {_relative(i.path, root).casefold(): i.mtime_ns or 0 for i in found if i.type == pafs.FileType.File}


# ---------------------------------------------------------------------------------------------- plan


def plan_outputs(
    images: list[tuple[str, int, int]], existing: dict[str, int], *, force: bool = False
) -> tuple[list[tuple[str, str, str]], list[Entry]]:
    """((rel, output rel, why) to convert, entries needing no work). Names as the local engine
    gives them to a fresh DST; an output at least as new as its source is finished."""
    claimed: set[str] = set()
    todo, done = [], []
    for rel, size, mtime_ns in images:
        output = next(c for c in output_candidates(rel) if c.casefold() not in claimed)
        claimed.add(output.casefold())
        finished = existing.get(output.casefold())
        if finished is None:
            todo.append((rel, output, "new"))
        elif force:
            todo.append((rel, output, "forced"))
        elif finished < mtime_ns:
            todo.append((rel, output, "changed"))
        else:
            done.append(Entry(rel, "unchanged", output, size, reason="its output exists in DST"))
    return todo, done


def make_plan(source: str, destination: str, *, force: bool = False) -> tuple[Plan, dict[str, int]]:
    """(what the run has to do, source sizes by rel), from SRC's listing and what DST holds."""
    src_fs, src_root = filesystem(source)
    dst_fs, dst_root = filesystem(destination)
    if _is_local(src_fs):
        if not Path(src_root).is_dir():
            raise CodecError(f"not a folder: {shorten(source, 200)}")
        if _is_local(dst_fs) and Path(dst_root).exists() and not Path(dst_root).is_dir():
            raise CodecError(f"output is not a folder: {shorten(destination, 200)}")
        images, others = scan(Path(src_root), Path(dst_root))  # exactly the local engine's listing
    else:
        images, others = list_tree(src_fs, src_root)
    todo, done = plan_outputs(images, _existing_outputs(dst_fs, dst_root), force=force)
    plan = Plan(entries=done + [Entry(rel, "skipped", reason="not an image file") for rel in others])
    plan.tasks = [Task(rel, rel, output, output, why != "new", why) for rel, output, why in todo]
    return plan, {rel: size for rel, size, _ in images}


def dry_run(source: str, destination: str, *, force: bool = False) -> Plan:
    """What a Ray run would do; writes nothing and starts no Ray."""
    return make_plan(source, destination, force=force)[0]


# ---------------------------------------------------------------------------------------------- actors


class ConvertActor:
    """One Ray actor: loads the codec once, then converts the photos of each batch it is given.

    A batch is Ray Data's ``{"rel": array, "output": array}``; the reply has one JSON result per
    photo (``convert_one``'s dict), so the driver builds the same report as the local engine."""

    def __init__(self, settings: dict, source: str, destination: str, threads: int):
        self.settings = Settings(**settings)
        self.codec = load_codec(self.settings, threads)
        self.src_fs, self.src_root = filesystem(source)
        self.dst_fs, self.dst_root = filesystem(destination)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        results = [json.dumps(self.convert(str(rel), str(out))) for rel, out in zip(batch["rel"], batch["output"])]
        return {"result": np.array(results, dtype=object)}

    def convert(self, rel: str, output_rel: str) -> dict:
        with tempfile.TemporaryDirectory(prefix="hyperthumb-ray-") as scratch:
            try:
                source = self._local_source(rel, Path(scratch))
            except OSError as exc:
                return {
                    "rel": rel,
                    "output": output_rel,
                    "status": "failed",
                    "reason": f"cannot read it: {shorten(exc, 160)}",
                }
            local_dst = _is_local(self.dst_fs)
            destination = (
                os.path.join(self.dst_root, *output_rel.split("/")) if local_dst else os.path.join(scratch, "out.jpg")
            )
            result = convert_one(self.codec, self.settings, Task(rel, source, output_rel, destination, True, "ray"))
            if result["status"] == "done" and not local_dst:
                try:
                    self._upload(destination, output_rel)
                except OSError as exc:
                    result.update(status="failed", reason=f"cannot write the output: {shorten(exc, 160)}")
            return result

    def _local_source(self, rel: str, scratch: Path) -> str:
        path = _join(self.src_root, rel)
        if _is_local(self.src_fs):
            return path
        copy = scratch / PurePosixPath(rel).name  # the same name: the suffix says which reader (RAW)
        with self.src_fs.open_input_stream(path) as stream, open(copy, "wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
        return str(copy)

    def _upload(self, local: str, output_rel: str) -> None:
        """One stream per object: the object store publishes it whole when the stream closes."""
        key = _join(self.dst_root, output_rel)
        if "/" in key:
            self.dst_fs.create_dir(key.rsplit("/", 1)[0], recursive=True)
        with open(local, "rb") as f, self.dst_fs.open_output_stream(key) as stream:
            while chunk := f.read(1 << 20):
                stream.write(chunk)


# ---------------------------------------------------------------------------------------------- driver


def _quiet(ray) -> None:
    """Ray Data's own progress bars and execution logs off: the command has its tqdm bar."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.WARNING)


def convert_with_ray(
    source: str,
    destination: str,
    settings: Settings,
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    force: bool = False,
    on_result: Callable[[Task, dict], None] | None = None,
    progress: Callable[[int], object] | None = None,
) -> Summary:
    """The run on Ray: list, plan, map the photos over an actor pool, collect one result each.

    ``workers``: actors in the pool (default: as many as the cluster's CPUs allow, at
    ``cpus_per_worker`` each); ``gpus_per_worker`` > 0 puts each actor on a GPU share (the codec
    then runs on CUDA). ``address``: an existing cluster (``auto``, ``ray://host:10001``); None
    starts a local Ray unless one is running."""
    start = time.monotonic()
    ray = _ray()
    plan, sizes = make_plan(source, destination, force=force)
    todo = plan.tasks
    summary = Summary(list(plan.entries))
    dst_fs, dst_root = filesystem(destination)
    if _is_local(dst_fs):
        Path(dst_root).mkdir(parents=True, exist_ok=True)
        remove_stale_parts_under(Path(dst_root))
    bar = progress(len(todo)) if progress is not None else None
    try:
        if todo:
            if not ray.is_initialized():
                ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
            pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_worker, 0.01)))
            threads = settings.threads or max(1, int(cpus_per_worker))
            if gpus_per_worker and settings.device is None:
                settings = Settings(**{**asdict(settings), "device": "cuda"})
            _quiet(ray)
            dataset = ray.data.from_items([{"rel": task.rel, "output": task.output_rel} for task in todo])
            dataset = dataset.map_batches(
                ConvertActor,
                batch_size=1,  # a photo takes seconds: one per call spreads them evenly over the pool
                compute=ray.data.ActorPoolStrategy(size=min(pool, len(todo))),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker or None,
                fn_constructor_kwargs={
                    "settings": asdict(settings),
                    "source": source,
                    "destination": destination,
                    "threads": threads,
                },
                # a dead actor is restarted and its photo retried: Ray Data's defaults for actor pools
            )
            tasks = {task.rel: task for task in todo}
            for row in dataset.iter_rows():
                result = json.loads(row["result"])
                result.setdefault("size", sizes.get(result["rel"]))
                summary.entries.append(_entry(result))
                if on_result is not None:
                    on_result(tasks[result["rel"]], result)
                if bar is not None:
                    bar.update(1)
    except BaseException:
        summary.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        if _is_local(dst_fs):
            remove_stale_parts_under(Path(dst_root))
    summary.seconds = time.monotonic() - start
    summary.entries.sort(key=lambda e: _path_order(e.path))
    return summary
