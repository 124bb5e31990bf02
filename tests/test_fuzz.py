"""Hostile files (issue 10): a seeded mutation fuzz over a real HyperThumbnail, and one
regression test per numbered case of the issue.

Every command runs in a subprocess (``hostile_runner.py``, many files per process), so that
its memory can be measured and a crash cannot take pytest with it. The promise checked for
every input: exit 0 with a valid output, or exit 1 with one line on stderr; never a traceback;
peak memory under 1 GB; the input file unchanged; nothing left behind but the output.
"""

import hashlib
import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import piexif
import pytest
from codec_fixtures import make_weights
from PIL import Image

from app.cli import main
from app.synthetic import photo_like

RUNNER = Path(__file__).with_name("hostile_runner.py")
MAX_RSS_KB = 1024 * 1024  # 1 GB: the promise
ADDRESS_SPACE = 3 << 30  # a child that tries more fails fast (MemoryError), never swamps the CI machine
MUTANTS = 100
SEED = 20260510
UNCLEAN = ("Traceback", "internal error", "out of memory", "DecompressionBomb")


# --------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Weights, a small camera-like photo, its HyperThumbnail (the current format) and a v1-style
    copy (marker as JSON in the EXIF UserComment, no XMP)."""
    root = tmp_path_factory.mktemp("hostile")
    weights = root / "weights"
    make_weights(weights)
    photo = root / "photo.jpg"
    exif = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Make: b"TestCam",
                piexif.ImageIFD.Model: b"TestCam One",
                piexif.ImageIFD.Orientation: 1,
            },
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00",
                piexif.ExifIFD.ExposureTime: (1, 250),
                piexif.ExifIFD.FNumber: (28, 10),
                piexif.ExifIFD.ISOSpeedRatings: 200,
            },
        }
    )
    Image.fromarray(photo_like(160, 120, seed=5, detail=0.3)).save(photo, quality=92, exif=exif)
    ht = root / "ht.jpg"
    assert main(["--weights", str(weights), "encode", str(photo), str(ht)]) == 0
    v1 = root / "v1.jpg"
    write_v1(ht, v1)
    return SimpleNamespace(root=root, weights=weights, photo=photo, ht=ht, v1=v1)


def v1_marker(ht: Path, **changes) -> bytes:
    """A format v1 marker (JSON) for ``ht``'s photo, with ``changes`` to its fields."""
    from app.codec.files.reader import read_marker

    m = read_marker(ht)
    fields = {"format": "HyperThumbnail", "version": 1, "scale": m.scale, "width": m.width, "height": m.height,
              "model_id": m.model_id, "weights_sha256": m.weights_sha256, "rate": m.rate}  # fmt: skip
    return json.dumps({**fields, **changes}, separators=(",", ":")).encode()


def write_v1(ht: Path, out: Path, marker_json: bytes | None = None) -> None:
    """``ht``'s thumbnail, tables and size as a v1 file: the marker in the EXIF UserComment."""
    comment = b"ASCII\x00\x00\x00HyperThumbnail " + (marker_json if marker_json is not None else v1_marker(ht))
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"TestCam"}, "Exif": {piexif.ExifIFD.UserComment: comment}})
    with Image.open(ht) as im:
        tables = [im.quantization[0], im.quantization[1]]
        im.convert("RGB").save(out, "JPEG", qtables=tables, subsampling=0, exif=exif)


def segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start of its length field, length) of every segment before the scan, and the scan's
    (0xDA, start of its header, length) last."""
    found, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        found.append((marker, i + 2, length))
        if marker == 0xDA:
            break
        i += 2 + length
    return found


def exif_entries(data: bytes) -> list[int]:
    """Offsets (in the file) of the 12-byte entries of IFD0 and the Exif IFD."""
    for marker, at, _length in segments(data):
        if marker == 0xE1 and data[at + 2 : at + 8] == b"Exif\x00\x00":
            tiff = at + 8
            order = "<" if data[tiff : tiff + 2] == b"II" else ">"
            u16 = lambda o: struct.unpack(order + "H", data[o : o + 2])[0]  # noqa: B023 (used in this iteration)
            u32 = lambda o: struct.unpack(order + "I", data[o : o + 4])[0]  # noqa: B023
            entries, ifds = [], [u32(tiff + 4)]
            while ifds and len(entries) < 200:
                ifd = tiff + ifds.pop()
                if ifd + 2 > len(data):
                    continue
                for k in range(min(u16(ifd), 64)):
                    entry = ifd + 2 + 12 * k
                    entries.append(entry)
                    if u16(entry) == 0x8769:
                        ifds.append(u32(entry + 8))
            return entries
    return []


def marker_span(data: bytes) -> tuple[int, int]:
    """Where the marker's text is: the XMP attributes (v2) or the JSON (v1)."""
    for start_text, end_text in ((b"hyperthumb:Version", b"/>"), (b'{"format"', b"}")):
        start = data.find(start_text)
        if start >= 0:
            return start, data.find(end_text, start) + len(end_text)
    return 0, 0


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded mutation of a JPEG: its frame size or coding, a table, an EXIF count or offset,
    the scan, a segment length or a flood of copies of one, a restart interval, a truncation, or
    the marker's text (numbers, nesting, other scripts' digits, control characters)."""
    b = bytearray(data)
    segs = segments(data)
    kinds = ["sof", "coding", "dqt", "exif", "scan", "length", "flood", "restart", "truncate", "marker", "marker"]
    kind = rng.choice(kinds + ["header"])
    if kind == "coding":  # another frame type: arithmetic, lossless, extended (issue 20, class 1 and 8)
        at = next(a for m, a, _ in segs if m in (0xC0, 0xC1, 0xC2))
        b[at - 1] = rng.choice([0xC1, 0xC3, 0xC9, 0xCA, 0xCB])
        if rng.random() < 0.5:  # ... claiming a large frame too
            b[at + 3 : at + 7] = struct.pack(">HH", 16000, 16000)
    elif kind == "flood":  # one segment repeated: scans, EXIF, comments (class 2)
        marker, at, length = rng.choice(segs)
        copies = rng.choice([300, 3000]) if marker != 0xDA else 2000
        end = len(data) - 2 if marker == 0xDA else at + length
        piece = data[at - 2 : end]
        if len(piece) * copies > 20 << 20:
            copies = max(2, (20 << 20) // len(piece))
        b[at - 2 : end] = piece * copies
    elif kind == "restart":  # a restart interval with no restart markers (class 8)
        scan = segs[-1][1] - 2
        b[scan:scan] = b"\xff\xdd" + struct.pack(">HH", 4, rng.choice([1, 2, 7, 0xFFFF]))
    elif kind == "sof":
        at = next(a for m, a, _ in segs if m in (0xC0, 0xC1, 0xC2))
        value = rng.choice([0, 1, 7, 8, 255, 4096, 16384, 28000, 65535, rng.randrange(65536)])
        field = at + 3 + 2 * rng.randrange(2)  # height, then width
        b[field : field + 2] = struct.pack(">H", value)
    elif kind == "dqt":
        tables = [(a, n) for m, a, n in segs if m == 0xDB]
        at, length = rng.choice(tables)
        b[at + 2 + rng.randrange(length - 2)] = rng.choice([0, 1, 255, rng.randrange(256)])
    elif kind == "exif":
        entries = exif_entries(data)
        if not entries:
            return mutate(data, rng)
        entry = rng.choice(entries)
        field = entry + rng.choice([2, 4, 8])  # type, count, value/offset
        width = 2 if field == entry + 2 else 4
        value = rng.choice([0, 1, 0xFFFF, 0x10000000, 0xFFFFFFFF, rng.randrange(1 << 16)])
        order = "<" if data.find(b"II*\x00") >= 0 else ">"
        b[field : field + width] = struct.pack(order + ("H" if width == 2 else "I"), value % (1 << 8 * width))
    elif kind == "scan":
        scan = segs[-1][1] + segs[-1][2]
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(scan, len(b) - 2)] = rng.randrange(256)
    elif kind == "length":
        _, at, _ = rng.choice(segs)
        b[at : at + 2] = struct.pack(">H", rng.choice([0, 1, 2, 0xFFFF, rng.randrange(1 << 16)]))
    elif kind == "truncate":
        del b[rng.randrange(2, len(b)) :]
    elif kind == "header":
        scan = segs[-1][1]
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(2, scan)] = rng.randrange(256)
    else:
        start, end = marker_span(data)
        if end <= start:
            return mutate(data, rng)
        text = bytes(b[start:end])
        digits = [i for i in range(len(text)) if text[i : i + 1].isdigit()]
        choice = rng.randrange(7)
        if choice == 0 and digits:  # a number made huge, zero or negative
            i = rng.choice(digits)
            j = i
            while j < len(text) and text[j : j + 1].isdigit():
                j += 1
            text = text[:i] + rng.choice([b"0", b"-4", b"8", b"16", b"9" * 4000, b"65536", b"1e308"]) + text[j:]
        elif choice == 1:  # deep nesting
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice([b"[", b"{", b"<a>"]) * 3000 + text[i:]
        elif choice == 2:
            text = text[: rng.randrange(len(text))]
        elif choice == 3:
            text = text.upper()
        elif choice == 5 and digits:  # another script's digit or a superscript (class 4)
            i = rng.choice(digits)
            text = text[:i] + rng.choice(["²", "١", "６", "߃"]).encode() + text[i + 1 :]
        elif choice == 6:  # control characters XML admits, for `info` to print (class 7)
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice([b"&#10;", b"&#13;", b"&#x85;", b"&#x2028;", b"&#x202e;"]) + text[i:]
        else:
            i = rng.randrange(len(text))
            text = text[:i] + bytes([rng.randrange(256)]) + text[i + 1 :]
        b[start:end] = text
    return kind, bytes(b)


# --------------------------------------------------------------------------- running


def run_jobs(jobs: list[dict], tmp: Path, env: dict | None = None, timeout: float = 240) -> dict:
    """Run jobs in one subprocess (see hostile_runner.py); its results and peak RSS."""
    jobs_file, results_file = tmp / f"jobs-{os.getpid()}-{time.monotonic_ns()}.json", tmp / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    results_file.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(jobs_file), str(results_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        preexec_fn=_cap_address_space,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(results_file.read_text())
    assert report["peak_rss_kb"] < MAX_RSS_KB, f"peak RSS {report['peak_rss_kb'] // 1024} MB"
    return report


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def decode_argv(corpus, path: Path, out: Path, *extra: str) -> list[str]:
    return ["--weights", str(corpus.weights), "decode", str(path), str(out), "--runtime", "torch-fp32", *extra]


def assert_clean(result: dict) -> None:
    """Exit 0, or exit 1 with exactly one line on stderr; no traceback; warnings as one line each."""
    text = result["stdout"] + result["stderr"]
    assert not any(word in text for word in UNCLEAN), text[-2000:]
    lines = result["stderr"].strip().splitlines()
    assert all(line.startswith("hyperthumb: ") for line in lines), result["stderr"][-2000:]
    if result["code"] == 1:
        errors = [line for line in lines if line.startswith("hyperthumb: error: ")]
        assert len(errors) == 1 and len(errors[0]) < 500, result["stderr"][-2000:]
    else:
        assert result["code"] == 0, result
        assert not any(line.startswith("hyperthumb: error") for line in lines), result["stderr"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the fuzz


def test_fuzz_mutated_hyperthumbnails_fail_cleanly(corpus, tmp_path):
    rng = random.Random(SEED)
    seeds = [corpus.ht.read_bytes(), corpus.v1.read_bytes()]
    jobs, mutants = [], []
    for n in range(MUTANTS):
        kind, data = mutate(seeds[n % 2], rng)
        path = tmp_path / f"m{n:03d}.jpg"
        path.write_bytes(data)
        mutants.append((path, kind, hashlib.sha256(data).hexdigest()))
        out = tmp_path / f"m{n:03d}.png"
        jobs += [{"file": str(path), "argv": ["info", str(path)]}, {"file": str(path), "argv": decode_argv(corpus, path, out)},
                 {"file": str(path), "open": True}]  # fmt: skip
    start = time.monotonic()
    report = run_jobs(jobs, tmp_path)
    seconds = time.monotonic() - start
    counts: dict[str, int] = {}
    for result in report["results"]:
        job = "open" if result.get("open") else result["argv"][0] if result["argv"][0] == "info" else "decode"
        if job == "open":
            outcome = result["outcome"]
            assert outcome in ("opened", "CodecError"), result
            assert not result["warnings"], result["warnings"]
        else:
            assert_clean(result)
            outcome = f"exit {result['code']}"
        counts[f"{job} {outcome}"] = counts.get(f"{job} {outcome}", 0) + 1
    for path, kind, sha in mutants:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{path.name} ({kind}) was changed"
        out = path.with_suffix(".png")
        if out.exists():
            with Image.open(out) as im:
                im.load()
                assert im.mode == "RGB" and im.width > 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert not leftovers, leftovers
    print(
        f"\nfuzz: {MUTANTS} mutants in {seconds:.1f}s, peak {report['peak_rss_kb'] // 1024} MB: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    )


# --------------------------------------------------------------------------- the cases


def patch_count(data: bytes, tag: int, count: int) -> bytes:
    """Set the count of IFD0's entry ``tag`` (case 2: the Exif IFD pointer's, to 0x10000000)."""
    for entry in exif_entries(data):
        order = "<" if data.find(b"II*\x00") >= 0 else ">"
        if struct.unpack(order + "H", data[entry : entry + 2])[0] == tag:
            return data[: entry + 4] + struct.pack(order + "I", count) + data[entry + 8 :]
    raise AssertionError(f"no tag {tag:#x}")


def patch_sof(data: bytes, width: int, height: int) -> bytes:
    at = next(a for m, a, _ in segments(data) if m in (0xC0, 0xC1, 0xC2))
    return data[: at + 3] + struct.pack(">HH", height, width) + data[at + 7 :]


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width`` x ``height`` (its one IDAT holds a few rows)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")
    )


def all_commands(corpus, path: Path, tmp: Path) -> list[dict]:
    """info, decode, encode and open_image of one file."""
    return [{"file": str(path), "argv": ["info", str(path)]},
            {"file": str(path), "argv": decode_argv(corpus, path, tmp / f"{path.stem}.dec.png")},
            {"file": str(path), "argv": ["--weights", str(corpus.weights), "encode", str(path), str(tmp / f"{path.stem}.enc.jpg")]},
            {"file": str(path), "open": True}]  # fmt: skip


def check_all(report: dict, files: list[Path], before: dict[Path, str]) -> list[dict]:
    for result in report["results"]:
        if result.get("open"):
            assert result["outcome"] in ("opened", "CodecError") and not result["warnings"], result
        else:
            assert_clean(result)
    assert all(digest(p) == before[p] for p in files), "an input was changed"
    return report["results"]


def test_case1_deeply_nested_marker_is_a_damaged_marker(corpus, tmp_path):
    deep = tmp_path / "deep.jpg"
    write_v1(corpus.ht, deep, b"[" * 5000)
    deep_xmp = tmp_path / "deep_xmp.jpg"
    start, end = marker_span(corpus.ht.read_bytes())
    data = corpus.ht.read_bytes()
    deep_xmp.write_bytes(data[:start] + b"<a>" * 5000 + data[end:])  # broken XML, a segment length off
    files = [deep, deep_xmp]
    before = {p: digest(p) for p in files}
    results = check_all(
        run_jobs([j for p in files for j in all_commands(corpus, p, tmp_path)], tmp_path), files, before
    )
    info = [r for r in results if r.get("argv", [""])[0] == "info"]
    assert all(r["code"] == 0 and "marker" in r["stdout"] for r in info), info  # plain, and why


def test_case2_corrupt_exif_count_is_bounded(corpus, tmp_path):
    camera = tmp_path / "camera.jpg"
    camera.write_bytes(patch_count(corpus.photo.read_bytes(), 0x8769, 0x10000000))
    marked = tmp_path / "marked.jpg"
    marked.write_bytes(patch_count(corpus.v1.read_bytes(), 0x8769, 0x10000000))
    files = [camera, marked]
    before = {p: digest(p) for p in files}
    start = time.monotonic()
    report = run_jobs([j for p in files for j in all_commands(corpus, p, tmp_path)], tmp_path)
    check_all(report, files, before)
    assert time.monotonic() - start < 60


def test_case2_exif_for_display_is_bounded_and_piexif_shaped(corpus, tmp_path):
    import tracemalloc

    from app.codec.files.exif_tags import exif_ifds

    block = Image.open(corpus.photo).info["exif"]
    tags = exif_ifds(block)
    assert tags["0th"][piexif.ImageIFD.Make] == b"TestCam"
    assert tags["Exif"][piexif.ExifIFD.ExposureTime] == (1, 250) and tags["Exif"][piexif.ExifIFD.FNumber] == (28, 10)
    assert tags["Exif"][piexif.ExifIFD.ISOSpeedRatings] == 200
    camera = tmp_path / "camera.jpg"
    camera.write_bytes(patch_count(corpus.photo.read_bytes(), 0x8769, 0x10000000))
    bad = Image.open(camera).info["exif"]
    tracemalloc.start()
    start = time.monotonic()
    damaged = exif_ifds(bad)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - start < 1 and peak < 10 << 20
    assert damaged.get("0th", {}).get(piexif.ImageIFD.Make) == b"TestCam" and "Exif" not in damaged
    assert exif_ifds(b"Exif\0\0garbage") == {} and exif_ifds(None) == {}


def test_case3_only_the_models_scale_is_accepted(corpus, tmp_path):
    files = []
    for scale in (8, 16):
        v1 = tmp_path / f"v1_scale{scale}.jpg"
        write_v1(corpus.ht, v1, v1_marker(corpus.ht, scale=scale))
        v2 = tmp_path / f"v2_scale{scale}.jpg"
        v2.write_bytes(corpus.ht.read_bytes().replace(b'Scale="4"', f'Scale="{scale}"'.encode()))
        files += [v1, v2]
    jobs = [{"file": str(p), "argv": decode_argv(corpus, p, tmp_path / f"{p.stem}.png")} for p in files]
    for result in run_jobs(jobs, tmp_path)["results"]:
        assert_clean(result)
        assert result["code"] == 1 and "scale" in result["stderr"], result
    assert not list(tmp_path.glob("*.png"))


def test_case4_decode_never_writes_over_its_input(corpus, tmp_path, capsys):
    source = tmp_path / "v.jpg"
    source.write_bytes(corpus.ht.read_bytes())
    (tmp_path / "link.jpg").symlink_to(source)
    os.link(source, tmp_path / "hard.jpg")
    before = digest(source)
    for src, out in [
        (source, source),
        (tmp_path / "link.jpg", source),
        (source, tmp_path / "link.jpg"),
        (tmp_path / "hard.jpg", source),
        (tmp_path / "." / "v.jpg", source),
    ]:
        start = time.monotonic()
        code = main(decode_argv(corpus, src, out, "--force"))
        err = capsys.readouterr().err
        assert code == 1 and "is the input file itself" in err and err.count("\n") == 1, err
        assert time.monotonic() - start < 2  # refused before any work
    assert digest(source) == before
    assert main(["--weights", str(corpus.weights), "encode", str(source), str(tmp_path / "hard.jpg"), "--force"]) == 1
    assert "refusing to overwrite the source" in capsys.readouterr().err and digest(source) == before


def test_case5_huge_claimed_sizes_are_refused_before_allocation(corpus, tmp_path):
    files = {
        "sof.jpg": patch_sof(corpus.ht.read_bytes(), 28000, 28000),
        "photo_sof.jpg": patch_sof(corpus.photo.read_bytes(), 28000, 28000),
        "just_over.jpg": patch_sof(corpus.photo.read_bytes(), 16001, 16000),  # 256.02 MP: over our budget only
        "too_short.jpg": patch_sof(corpus.photo.read_bytes(), 4000, 3000),  # in budget, but 13 kB cannot hold it
        "v1_both.jpg": None,
        "big.png": png_claiming(25000, 25000),
        "budget.png": png_claiming(16000, 16001),
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / name
        if data is None:
            write_v1(corpus.ht, path, v1_marker(corpus.ht, width=112000, height=112000))
            data = patch_sof(path.read_bytes(), 28000, 28000)
        path.write_bytes(data)
        paths.append(path)
    before = {p: digest(p) for p in paths}
    start = time.monotonic()
    results = check_all(
        run_jobs([j for p in paths for j in all_commands(corpus, p, tmp_path)], tmp_path), paths, before
    )
    assert time.monotonic() - start < 60
    for result in results:
        if result.get("open"):
            assert result["outcome"] == "CodecError", result
            assert "limit" in result["message"] or "too short" in result["message"], result["message"]
        else:
            assert result["code"] == 1, result
            assert "megapixels" in result["stderr"] or "too short" in result["stderr"], result["stderr"]


def test_case5_the_pixel_budget_is_configurable(corpus, tmp_path, monkeypatch, capsys):
    from app.codec.errors import CodecError, ImageTooLargeError
    from app.codec.files.document import open_image
    from app.codec.files.imageio import load_image
    from app.codec.files.limits import check_pixel_budget

    monkeypatch.setenv("HYPERTHUMB_MAX_PIXELS", "10000")
    with pytest.raises(ImageTooLargeError, match=r"160x120 \(0.02 megapixels\), over the limit of 0.01 megapixels"):
        load_image(corpus.photo)  # 160x120
    with pytest.raises(ImageTooLargeError):
        check_pixel_budget(101, 100, "it")
    check_pixel_budget(100, 100, "it")
    assert main(["info", str(corpus.photo)]) == 1 and "HYPERTHUMB_MAX_PIXELS" in capsys.readouterr().err
    monkeypatch.setenv("HYPERTHUMB_MAX_PIXELS", "lots")
    with pytest.raises(CodecError, match="whole number of pixels"):
        open_image(corpus.photo)
    monkeypatch.delenv("HYPERTHUMB_MAX_PIXELS")
    assert open_image(corpus.photo).full_size == (160, 120)


def test_case5_marker_size_over_the_budget_is_refused_before_decoding(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYPERTHUMB_MAX_PIXELS", "10000")  # the 40x30 thumbnail fits, its 160x120 photo does not
    out = tmp_path / "out.png"
    assert main(decode_argv(corpus, corpus.ht, out)) == 1
    err = capsys.readouterr().err
    assert "megapixels" in err and err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("suffix", [".psd", ".fits", ".xpm", ".blp", ".gif", ".ico", ".pdf", ".xyz", ""])
def test_case6_unwritable_output_types_are_refused_before_decoding(corpus, tmp_path, capsys, suffix):
    out = tmp_path / f"out{suffix}"
    start = time.monotonic()
    assert main(["--weights", str(tmp_path / "none"), "decode", str(corpus.ht), str(out)]) == 1  # before even weights
    err = capsys.readouterr().err
    assert err.startswith("hyperthumb: error: ") and err.count("\n") == 1 and ".png" in err, err
    assert time.monotonic() - start < 2 and not out.exists()


@pytest.mark.parametrize("device", ["cpu:x", "gpu", "cuda:9", "auto:1", "cpu:3", "9" * 4000])
def test_case6_bad_devices_are_one_sentence(corpus, tmp_path, capsys, device):
    code = main(decode_argv(corpus, corpus.ht, tmp_path / "o.png", "--device", device))
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("hyperthumb: error: ") and err.count("\n") == 1 and len(err) < 200, err
    assert "Traceback" not in err and not (tmp_path / "o.png").exists()


def test_case6_a_cuda_number_beyond_the_gpus_is_explained(monkeypatch):
    import torch

    from app.codec.engine.device import select_device
    from app.codec.errors import CodecError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(CodecError, match=r"no GPU cuda:9.*has 2 \(cuda:0 to cuda:1\)"):
        select_device("cuda:9")
    assert str(select_device("cuda:1")) == "cuda:1"


SLOW_SAVE = """
import os, sys, time
sys.path.insert(0, {root!r})
from PIL import Image
real_save = Image.Image.save
def slow_save(self, fp, *args, **kwargs):
    real_save(self, fp, *args, **kwargs)
    if str(fp).endswith(".part"):  # the output, not a probe into memory
        print("written", flush=True)
        time.sleep(30)
Image.Image.save = slow_save
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _decode_until_written(corpus, tmp_path: Path, out: Path) -> subprocess.Popen:
    script = tmp_path / "slow_decode.py"
    script.write_text(SLOW_SAVE.format(root=str(Path(__file__).resolve().parents[1])))
    proc = subprocess.Popen(
        [sys.executable, str(script), *decode_argv(corpus, corpus.ht, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "written"  # the temporary file is complete, not yet published
    assert [p.name for p in tmp_path.glob(".out.png.*.part")]
    return proc


def test_case7_sigterm_removes_the_temporary_file(corpus, tmp_path):
    out = tmp_path / "out.png"
    proc = _decode_until_written(corpus, tmp_path, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip() == "hyperthumb: terminated; no output was written"
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_case7_a_killed_writers_part_is_stale_and_cleaned(corpus, tmp_path):
    from app.codec.files.atomic import atomic_write_bytes, is_stale_part, remove_stale_parts

    out = tmp_path / "out.png"
    proc = _decode_until_written(corpus, tmp_path, out)
    part = next(tmp_path.glob(".out.png.*.part"))
    assert not is_stale_part(part.name)  # its writer is alive
    proc.kill()
    proc.communicate(timeout=30)
    assert part.exists() and is_stale_part(part.name) and not out.exists()
    live = tmp_path / f".other.png.{os.getppid()}-{part.name.split('-')[1]}"  # a live writer's: kept
    live.write_bytes(b"")
    assert remove_stale_parts(tmp_path) == [part] and live.exists()
    # and a writer cleans its folder by itself, once per process
    other = tmp_path / "sub"
    other.mkdir()
    stale = other / part.name.replace(".out.png.", ".x.png.")
    stale.write_bytes(b"half")
    atomic_write_bytes(other / "new.bin", b"data")
    assert not stale.exists() and (other / "new.bin").read_bytes() == b"data"


def test_case8_no_overwrite_is_atomic_between_racing_writers(tmp_path):
    from app.codec.errors import OutputExistsError
    from app.codec.files.atomic import atomic_output

    target = tmp_path / "out.png"
    with pytest.raises(OutputExistsError), atomic_output(target) as tmp:
        tmp.write_bytes(b"mine")
        target.write_bytes(b"theirs")  # another writer finished first
    assert target.read_bytes() == b"theirs" and not list(tmp_path.glob("*.part"))

    race = tmp_path / "race.png"
    barrier, outcomes = threading.Barrier(4), []

    def writer(n: int) -> None:
        try:
            with atomic_output(race) as tmp:
                tmp.write_bytes(f"writer {n}".encode())
                barrier.wait(timeout=10)  # all four are done writing; now all publish at once
            outcomes.append("won")
        except OutputExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["exists", "exists", "exists", "won"]
    assert race.read_bytes().startswith(b"writer ") and not list(tmp_path.glob("*.part"))
    with atomic_output(race, force=True) as tmp:  # --force replaces
        tmp.write_bytes(b"forced")
    assert race.read_bytes() == b"forced"


def test_case9_info_says_why_a_marked_file_is_plain(corpus, tmp_path, capsys):
    newer = tmp_path / "newer.jpg"
    write_v1(corpus.ht, newer, v1_marker(corpus.ht, version=99))
    damaged = tmp_path / "damaged.jpg"
    write_v1(corpus.ht, damaged, v1_marker(corpus.ht, width="wide"))
    for path, reason in ((newer, "newer"), (damaged, "damaged")):
        assert main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert "not a HyperThumbnail" in out or "plain" in out
        assert reason in out, out


def test_case10_upper_case_sha256_and_huge_values(corpus, tmp_path, capsys):
    from app.codec.engine.weights import find_weights

    weights = tmp_path / "weights"
    weights.mkdir()
    manifest = json.loads((corpus.weights / "manifest.json").read_text())
    for entry in manifest["models"].values():
        (weights / entry["file"]).write_bytes((corpus.weights / entry["file"]).read_bytes())
        entry["sha256"] = entry["sha256"].upper()
    (weights / "manifest.json").write_text(json.dumps(manifest))
    info = find_weights(weights)
    assert info.sha256 == info.sha256.lower()
    assert find_weights(weights, sha256=info.sha256.upper()).model_id == info.model_id
    upper = tmp_path / "upper.jpg"
    write_v1(corpus.ht, upper, v1_marker(corpus.ht, weights_sha256=info.sha256.upper()))
    out = tmp_path / "upper.png"
    assert main(["--weights", str(weights), "decode", str(upper), str(out), "--runtime", "torch-fp32"]) == 0, (
        capsys.readouterr().err
    )
    assert Image.open(out).size == (160, 120)
    capsys.readouterr()

    huge = "9" * 4000
    wide = tmp_path / "wide.jpg"
    write_v1(corpus.ht, wide, v1_marker(corpus.ht).replace(b'"width":160', b'"width":' + huge.encode()))
    for argv in (
        decode_argv(corpus, corpus.ht, tmp_path / "r.png", "--region", f"0,0,{huge},1"),
        decode_argv(corpus, wide, tmp_path / "w.png"),
        ["info", str(wide)],
        ["encode", str(corpus.photo), str(tmp_path / "e.jpg"), "--rate", huge],
        decode_argv(corpus, corpus.ht, tmp_path / "t.png", "--tile", "9" * 5000),
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code in (0, 1, 2) and "Traceback" not in err and huge not in out + err, (argv[:3], err[:300])
        assert all(len(line) < 500 for line in (out + err).splitlines())


def test_no_traceback_even_for_a_bug(monkeypatch, capsys, tmp_path):
    import app.cli

    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setitem(app.cli.COMMANDS, "info", broken)
    assert main(["info", str(tmp_path / "x.jpg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hyperthumb: error: internal error: ZeroDivisionError: division by zero second line")
    assert err.count("\n") == 1 and "HYPERTHUMB_DEBUG" in err

    def hungry(args):
        raise MemoryError()

    monkeypatch.setitem(app.cli.COMMANDS, "info", hungry)
    assert main(["info", "x.jpg"]) == 1 and "out of memory" in capsys.readouterr().err


# --------------------------------------------------------------------------- issue 20: round two


def with_xmp(data: bytes, packet: bytes) -> bytes:
    """``data`` with its XMP segment's packet replaced by ``packet`` (the segment re-sized)."""
    ident = b"http://ns.adobe.com/xap/1.0/\x00"
    for marker, at, length in segments(data):
        if marker == 0xE1 and data[at + 2 : at + 2 + len(ident)] == ident:
            body = ident + packet
            return data[: at - 2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[at + length :]
    raise AssertionError("no XMP segment")


def xmp_of(data: bytes) -> bytes:
    with Image.open(__import__("io").BytesIO(data)) as im:
        return im.info["xmp"]


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def frame_claiming(sof: int, width: int, height: int) -> bytes:
    """A grey JPEG of the coding ``sof`` names, claiming ``width`` x ``height``, 20 bytes of data."""
    frame = jpeg_segment(sof, bytes([8]) + struct.pack(">HH", height, width) + bytes([1, 1, 0x11, 0]))
    tables = jpeg_segment(0xDB, bytes([0]) + bytes([1] * 64))
    scan = jpeg_segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    return b"\xff\xd8" + tables + frame + scan + b"\x00" * 20 + b"\xff\xd9"


def repeated_scans(data: bytes, copies: int) -> bytes:
    """A progressive JPEG with its last scan repeated ``copies`` times more."""
    from app.codec.files.jpeg_segments import SOS, segments_of

    parts = segments_of(data, scans=True)
    last = [s for s in parts if s.marker == SOS][-1]
    return data[: parts[-1].start] + data[last.start : parts[-1].start] * copies + b"\xff\xd9"


def run_all(corpus, files: list[Path], tmp: Path, timeout: float = 240) -> tuple[list[dict], float]:
    before = {p: digest(p) for p in files}
    jobs = [job for p in files for job in all_commands(corpus, p, tmp)]
    start = time.monotonic()
    results = check_all(run_jobs(jobs, tmp, timeout=timeout), files, before)
    return results, time.monotonic() - start


def test_round2_class1_every_frame_type_is_bounded_before_allocation(corpus, tmp_path):
    # A 116-byte arithmetic-coded (SOF9) file claiming 16000x16000 made `info` take 2.5 GB: the
    # "one bit per block" check covered Huffman frames only. Arithmetic, lossless, extended,
    # progressive: each coding is bounded by the file's length before Pillow allocates.
    files = []
    for sof in (0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCA, 0xCB):
        path = tmp_path / f"sof{sof:02x}.jpg"
        path.write_bytes(frame_claiming(sof, 16000, 16000))
        files.append(path)
    results, _ = run_all(corpus, files, tmp_path)
    for result in results:
        if result.get("open"):
            assert result["outcome"] == "CodecError" and "too short" in result["message"], result
        else:
            assert result["code"] == 1 and "too short for" in result["stderr"], result


def test_round2_class2_scan_and_segment_floods_open_in_time(corpus, tmp_path):
    # 50,000 empty scans kept `info` busy a minute; 1,000 repeated 65 kB EXIF segments took 77 s
    # (Pillow joins them quadratically). Each is refused by one linear walk of the file.
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (90, 120, 30)).save(buffer, "JPEG", progressive=True)
    scans = tmp_path / "scans.jpg"
    scans.write_bytes(repeated_scans(buffer.getvalue(), 50_000))
    exif = tmp_path / "exif.jpg"
    plain = corpus.photo.read_bytes()
    app1 = jpeg_segment(0xE1, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + bytes(65000))
    exif.write_bytes(plain[:2] + app1 * 1000 + plain[2:])
    results, seconds = run_all(corpus, [scans, exif], tmp_path)
    assert seconds < 60, seconds  # 4 commands on each of a 0.7 MB and a 65 MB file
    for result in results:
        text = result.get("message", "") + result.get("stderr", "")
        assert result.get("code") == 1 or result.get("outcome") == "CodecError", result
        assert "scans" in text or "EXIF segments" in text, text


def test_round2_class3_a_payload_with_absurd_values_is_ignored_with_a_note(corpus, tmp_path, capsys):
    # A payload whose checksum is right but whose float32 scales times int8 values overflow (or
    # are merely huge) decoded to an all-black image with exit 0.
    from app.codec.engine import adaptation
    from app.codec.engine.weights import find_weights, load_model
    from app.codec.files.payload import ADAPTATION_KIND, pack_records
    from app.codec.files.reader import read_thumbnail
    from app.codec.files.writer import write_hyperthumbnail

    model = load_model(find_weights(corpus.weights))
    sizes = adaptation.layer_sizes(model)
    thumb = read_thumbnail(corpus.ht)
    base = tmp_path / "base.png"
    assert main(decode_argv(corpus, corpus.ht, base)) == 0
    capsys.readouterr()
    reference = np.asarray(Image.open(base), np.float64)
    for scale in (3.0e38, 1.0e6, 0.5):  # overflow, huge, and merely beyond what any fit writes
        body = struct.pack(">H", len(sizes)) + b"".join(
            struct.pack(">Hf", n, scale) + np.full(n, 127, np.int8).tobytes() for n in sizes
        )
        payload = pack_records({ADAPTATION_KIND: adaptation.MAGIC + zlib.compress(body)})
        hostile = tmp_path / f"scale{scale:g}.jpg"
        write_hyperthumbnail(hostile, thumb.rgb, thumb.luma_table, thumb.chroma_table, thumb.marker,
                             source_exif=thumb.exif, payload=payload)  # fmt: skip
        out = tmp_path / f"scale{scale:g}.png"
        assert main(decode_argv(corpus, hostile, out)) == 0
        err = capsys.readouterr().err
        assert "adaptation is not used" in err and "beyond" in err, err
        decoded = np.asarray(Image.open(out), np.float64)
        assert np.abs(decoded - reference).max() <= 2, scale  # the base reconstruction, not black


def test_round2_class4_only_ascii_digits_are_numbers_in_the_marker(corpus, tmp_path):
    # str.isdigit() accepts superscripts and other scripts' digits that int() refuses or reads
    # otherwise: info, decode and the viewer's loader ended in an internal error.
    data = corpus.ht.read_bytes()
    packet = xmp_of(data)
    width = next(p for p in packet.split(b'"') if p.isdigit() and p != b"2" and p != b"4")  # the width value
    files = []
    for n, fake in enumerate(["²", "١٦٠", "１６０", "1_60", "160\u0660", "nan"]):
        field = b"Width" if n < 5 else b"Rate"
        old = b'hyperthumb:%s="%s"' % (field, width if n < 5 else packet.split(b'hyperthumb:Rate="')[1].split(b'"')[0])
        assert old in packet
        path = tmp_path / f"digits{n}.jpg"
        path.write_bytes(with_xmp(data, packet.replace(old, b'hyperthumb:%s="%s"' % (field, fake.encode()))))
        files.append(path)
    results, _ = run_all(corpus, files, tmp_path)
    for result in results:
        if result.get("argv", [""])[0] == "info":
            assert result["code"] == 0 and "damaged HyperThumbnail marker" in result["stdout"], result
        elif result.get("open"):
            assert result["outcome"] == "opened" and not result["hyperthumbnail"], result


def test_round2_class6_no_output_line_can_be_forged_by_a_file(corpus, tmp_path, capsys):
    # A ModelId with line breaks printed raw forged extra lines of `info`; escape sequences and
    # bidi overrides steered the terminal. Everything printed from a file is escaped.
    data = corpus.ht.read_bytes()
    packet = xmp_of(data)
    model_id = packet.split(b'hyperthumb:ModelId="')[1].split(b'"')[0]
    forged = model_id + b"&#10;  rate           1.0&#13;&#x85;&#x2028;&#x202e;"  # what XML admits
    path = tmp_path / "forged.jpg"
    path.write_bytes(with_xmp(data, packet.replace(b'ModelId="' + model_id, b'ModelId="' + forged)))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert [line.startswith("  rate ") for line in out.splitlines()].count(True) == 1 and not {
        "\r",
        "\x85",
        "\u2028",
        "\u202e",
    } & set(out), out
    assert "\\x0a  rate           1.0\\x0d\\x85\\u2028\\u202e" in out, out
    assert main(decode_argv(corpus, path, tmp_path / "forged.png")) == 0  # the weights are found by hash
    both = "".join(capsys.readouterr())
    assert not {"\r", "\x85", "\u2028", "\u202e"} & set(both), both


def test_round2_class7_container_rules_are_enforced(corpus, tmp_path):
    # An arithmetic-coded HyperThumbnail, or one with a restart interval and no restart markers,
    # decoded to garbage or flat grey with exit 0. Both break FORMAT.md's container rules.
    from app.codec.files.jpeg_segments import ANY_SOF, SOS, segments_of

    data = corpus.ht.read_bytes()
    parts = segments_of(data)
    frame = next(s for s in parts if s.marker in ANY_SOF)
    arithmetic = bytearray(data)
    arithmetic[frame.start + 1] += 8  # SOF0 -> SOF8 is JPEG-LS's; SOF0/2 + 9 -> SOF9/11
    arithmetic[frame.start + 1] = {0xC0: 0xC9, 0xC1: 0xC9, 0xC2: 0xCA}[data[frame.start + 1]]
    sos = next(s for s in parts if s.marker == SOS)
    restart = data[: sos.start] + jpeg_segment(0xDD, struct.pack(">H", 4)) + data[sos.start :]
    files = [tmp_path / "arithmetic.jpg", tmp_path / "restart.jpg"]
    files[0].write_bytes(bytes(arithmetic))
    files[1].write_bytes(restart)
    results, _ = run_all(corpus, files, tmp_path)
    for result in results:
        argv = result.get("argv", [""])
        if argv[0] == "info":
            assert result["code"] == 0 and ("arithmetic-coded" in result["stdout"] or "restart" in result["stdout"])
        elif "decode" in argv:
            assert result["code"] == 1 and ("arithmetic-coded" in result["stderr"] or "restart" in result["stderr"])
        elif result.get("open"):
            assert result["outcome"] in ("opened", "CodecError") and not result.get("hyperthumbnail"), result


def test_round2_class9_a_re_encoded_thumbnail_is_named_and_not_decoded(corpus, tmp_path, capsys):
    # After an editor re-saved a HyperThumbnail at quality 30 the marker survived and decode gave
    # a result below a bicubic upscale, without a word. The marker fingerprints the tables.
    from app.codec.files.reader import read_marker

    assert read_marker(corpus.ht).tables_sha256 is not None
    resaved = tmp_path / "resaved.jpg"
    with Image.open(corpus.ht) as im:
        xmp_packet, exif = im.info["xmp"], im.info.get("exif", b"")
        im.convert("RGB").save(resaved, "JPEG", quality=30, subsampling=0, xmp=xmp_packet, exif=exif)
    assert main(["info", str(resaved)]) == 0
    out = capsys.readouterr().out
    assert "saved again by another program" in out and "not a HyperThumbnail" in out, out
    assert main(decode_argv(corpus, resaved, tmp_path / "r.png")) == 1
    err = capsys.readouterr().err
    assert "saved again" in err and "--allow-reencoded" in err and not (tmp_path / "r.png").exists()
    assert main(decode_argv(corpus, resaved, tmp_path / "r.png", "--allow-reencoded")) == 0
    assert Image.open(tmp_path / "r.png").size == (160, 120)
    same = tmp_path / "same.jpg"  # a lossless edit (the viewer's rotation, jpegtran) keeps the tables
    from app.codec.files.jpeg_orientation import with_orientation

    same.write_bytes(with_orientation(corpus.ht.read_bytes(), 6))
    assert main(decode_argv(corpus, same, tmp_path / "s.png")) == 0


def test_round2_class8_the_viewers_exif_panel_reads_with_the_bounded_parser(corpus, monkeypatch):
    # codec_bridge parsed EXIF with piexif, which builds gigabytes from one entry's count.
    import piexif as piexif_module

    from app.viewer import codec_bridge

    block = Image.open(corpus.photo).info["exif"]
    monkeypatch.setattr(piexif_module, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("piexif")))
    tags = codec_bridge.exif_tags(block)
    assert tags["0th"][piexif.ImageIFD.Make] == b"TestCam" and tags["Exif"][piexif.ExifIFD.FNumber] == (28, 10)
    hostile = patch_count(corpus.photo.read_bytes(), 0x010F, 0x10000000)  # Make claims 256M values
    with Image.open(__import__("io").BytesIO(hostile)) as im:
        damaged = codec_bridge.exif_tags(im.info["exif"])
    assert piexif.ImageIFD.Make not in damaged.get("0th", {})
