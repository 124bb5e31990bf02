"""The payload's APP11 segments: the JUMBF box written today (ISO/IEC 19566-5 in JPEG XT packets,
docs/FORMAT.md "Payload"), the legacy "HyperThumbnail-payload" segments still read, and hostile
segment sets that must end in a clear ``PayloadError``, quickly."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from app.codec.files import payload as P
from app.codec.files.header import build_metadata
from app.codec.files.marker import Marker
from app.codec.files.reader import read_thumbnail
from app.codec.files.writer import encode_jpeg, write_hyperthumbnail

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
# Literal values from docs/FORMAT.md, so a change to the module's constants shows up here.
UUID = bytes.fromhex("7c99110f9b9c5bc3bc62dd80bcfaf87f")
LABEL = b"org.hyperthumbnail.payload"
FULL_JUMBF = 65533 - 16 - 60  # the payload that fills one JUMBF segment exactly: 65,457
FULL_LEGACY = 65533 - 23 - 5  # the largest legacy chunk: 65,505
SIZES = [0, 1, 300, FULL_JUMBF - 1, FULL_JUMBF, FULL_JUMBF + 1, 2 * 65517 - 60, 200_000, 3_000_000]


def _payload(n: int) -> bytes:
    return np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()


def _split(segments: bytes) -> list[tuple[str, bytes]]:
    """Marker segments -> Pillow's ``applist`` form [("APP11", data after the length), ...]."""
    out, at = [], 0
    while at < len(segments):
        assert segments[at] == 0xFF
        (length,) = struct.unpack_from(">H", segments, at + 2)
        out.append((f"APP{segments[at + 1] & 15}", segments[at + 4 : at + 2 + length]))
        at += 2 + length
    assert at == len(segments)
    return out


def legacy_segments(payload: bytes) -> bytes:
    """The segments every writer wrote before the JUMBF form, byte for byte as the old
    ``payload.segments`` wrote them (kept here: the app writes only JUMBF)."""
    chunks = [payload[i : i + FULL_LEGACY] for i in range(0, len(payload), FULL_LEGACY)] or [b""]
    out = bytearray()
    for index, chunk in enumerate(chunks):
        body = b"HyperThumbnail-payload\x00" + struct.pack(">BHH", 1, index, len(chunks)) + chunk
        out += b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body
    return bytes(out)


def _packet(z: int, box_length: int, data: bytes, en: int = 0x4854, kind: bytes = b"jumb") -> tuple[str, bytes]:
    return "APP11", b"JP" + struct.pack(">HII4s", en, z, box_length, kind) + data


def _jumbf_box(content_boxes: bytes, toggles: int = 3, label: bytes = LABEL, uuid: bytes = UUID) -> bytes:
    jumd = uuid + bytes([toggles]) + (label + b"\0" if toggles & 2 else b"")
    content = struct.pack(">I4s", 8 + len(jumd), b"jumd") + jumd + content_boxes
    return struct.pack(">I4s", 8 + len(content), b"jumb") + content


def _bidb(data: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(data), b"bidb") + data


def _packets(
    box: bytes, per_packet: int = 65517, en: int = 0x4854, first: int | None = None
) -> list[tuple[str, bytes]]:
    """A box as JPEG XT packets, as another implementation following docs/FORMAT.md may write them:
    the first packet holds ``first`` bytes of the box's content (at least its description box)."""
    content = box[8:]
    first = per_packet if first is None else first
    starts = [0, *range(first, len(content), per_packet)]
    ends = [*starts[1:], len(content)]
    return [_packet(z, len(box), content[a:b], en) for z, (a, b) in enumerate(zip(starts, ends), start=1)]


def _assemble(app: list[tuple[str, bytes]], payload: bytes) -> bytes:
    return P.assemble(app, len(payload), P.digest(payload))


# ----------------------------------------------------------------------------- the JUMBF form


def test_the_jumbf_layout_byte_by_byte():
    payload = b"HTR1" + bytes(range(40))
    segment = P.segments(payload)
    box_length = 8 + (8 + 16 + 1 + len(LABEL) + 1) + 8 + len(payload)
    expected_data = (
        b"JP"
        + struct.pack(">HI", 0x4854, 1)  # En "HT", Z = 1
        + struct.pack(">I4s", box_length, b"jumb")
        + struct.pack(">I4s", 52, b"jumd")
        + UUID
        + b"\x03"  # requestable, label present
        + LABEL
        + b"\x00"
        + struct.pack(">I4s", 8 + len(payload), b"bidb")
        + payload
    )
    assert segment == b"\xff\xeb" + struct.pack(">H", 2 + len(expected_data)) + expected_data
    assert box_length == 68 + len(payload) == len(P.box(payload))
    assert P.segments(payload) == b"".join(
        b"\xff\xeb" + struct.pack(">H", 2 + len(d)) + d for _, d in _packets(P.box(payload))
    )


@pytest.mark.parametrize("n", SIZES)
def test_jumbf_segments_of_every_size(n):
    payload = _payload(n)
    data = P.segments(payload)
    app = _split(data)
    assert len(data) == P.segments_size(n)
    assert len(app) == max(1, -(-(n + 60) // 65517))
    if n == FULL_JUMBF:
        assert len(app) == 1 and len(app[0][1]) == 65533  # Le = 65,535: the segment is full
    if n == FULL_JUMBF + 1:
        assert len(app) == 2 and len(app[1][1]) == 16 + 1
    for z, (name, seg) in enumerate(app, start=1):
        assert name == "APP11" and len(seg) <= 65533
        assert struct.unpack_from(">2sHII4s", seg) == (b"JP", 0x4854, z, 68 + n, b"jumb")
    assert b"".join(seg[16:] for _, seg in app) == P.box(payload)[8:]
    assert _assemble(app, payload) == payload
    assert _assemble(app[::-1], payload) == payload  # packets are put in order by Z, not by position


@pytest.mark.parametrize("n", [300, FULL_JUMBF, 200_000])
def test_a_written_file_round_trips(tmp_path, n):
    payload = _payload(n)
    path = _write(tmp_path / "t.jpg", payload)
    assert b"HyperThumbnail-payload" not in path.read_bytes()  # writers write only the JUMBF form
    thumbnail = read_thumbnail(path)
    assert thumbnail.payload == payload and thumbnail.payload_problem is None


def test_another_writers_packet_sizes_and_unknown_boxes_are_read():
    payload = _payload(5000)
    box = _jumbf_box(struct.pack(">I4s", 12, b"free") + b"skip" + _bidb(payload), toggles=0)  # no label
    assert _assemble(_packets(box, per_packet=1000, first=45), payload) == payload


def test_other_jumbf_boxes_in_the_file_are_left_alone():
    """A C2PA manifest store (En 0x0211) interleaved with ours, and another box with our En."""
    payload = _payload(150_000)
    ours = _split(P.segments(payload))
    c2pa = _packets(_jumbf_box(b"", uuid=b"c2pa" + bytes.fromhex("00110010800000aa00389b71")), en=0x0211)
    other = _packets(_jumbf_box(_bidb(b"x" * 70_000), uuid=bytes(16)), en=0x4854)  # same En, another LBox
    app = [ours[0], *c2pa, ours[1], *other, ("APP1", b"Exif\0\0"), ours[2]]
    assert _assemble(app, payload) == payload


def test_the_jumbf_box_wins_over_legacy_segments():
    payload = _payload(1000)
    app = _split(legacy_segments(b"old" * 10)) + _split(P.segments(payload))
    assert _assemble(app, payload) == payload


def _hostile_cases() -> dict[str, tuple[list[tuple[str, bytes]], str]]:
    payload = _payload(150_000)
    good = _split(P.segments(payload))
    length = 68 + len(payload)
    first = good[0][1]

    def with_first(data: bytes) -> list[tuple[str, bytes]]:
        return [("APP11", data), *good[1:]]

    def box_of(content_boxes: bytes) -> list[tuple[str, bytes]]:
        return _packets(_jumbf_box(content_boxes))

    return {
        "a packet twice": ([*good, good[1]], "packet 2 appears twice"),
        "a packet missing": ([good[0], good[2]], "missing or inconsistent"),
        "packet number 0": ([good[0], ("APP11", good[1][1][:4] + b"\0\0\0\0" + good[1][1][8:]), good[2]], "missing"),
        "packets beyond the box": ([*good, _packet(4, length, b"x")], "more bytes than their box"),
        "a packet cut short": ([*good[:2], ("APP11", good[2][1][:-1])], "missing or inconsistent"),
        "a packet's LBox changed": (
            [*good[:2], ("APP11", good[2][1][:8] + struct.pack(">I", 9) + good[2][1][12:])],
            "missing",
        ),
        "two first packets": ([*good, ("APP11", first[:2] + b"\0\1" + first[4:])], "more than one payload box"),
        "an extended length": (with_first(first[:8] + struct.pack(">I", 1) + first[12:]), "XLBox"),
        "a box below its headers": (with_first(first[:8] + struct.pack(">I", 40) + first[12:]), "declares 40 bytes"),
        "a box over the bound": (with_first(first[:8] + struct.pack(">I", 0xFFFFFFF0) + first[12:]), "declares"),
        "a description too short": (with_first(first[:16] + struct.pack(">I", 20) + first[20:]), "description"),
        "a description too long": (with_first(first[:16] + struct.pack(">I", 1 << 30) + first[20:]), "description"),
        "no data box": (box_of(struct.pack(">I4s", 8, b"free")), "no data box"),
        "two data boxes": (box_of(_bidb(b"a") + _bidb(b"b")), "two data boxes"),
        "a truncated content box": (box_of(_bidb(b"a") + b"\0\0\0"), "truncated"),
        "a content box below 8 bytes": (box_of(struct.pack(">I4s", 4, b"bidb")), "malformed"),
        "a content box past the end": (box_of(struct.pack(">I4s", 100, b"bidb") + b"short"), "malformed"),
        "another payload": (box_of(_bidb(b"not the marker's payload")), "checksum"),
    }


@pytest.mark.parametrize("case", list(_hostile_cases()))
def test_hostile_jumbf_packets_give_a_clear_error(case):
    app, message = _hostile_cases()[case]
    payload = _payload(150_000)
    with pytest.raises(P.PayloadError, match=message):
        _assemble(app, payload)


def test_random_damage_to_the_packets_is_a_payload_error():
    """Bytes flipped in the headers, packets cut, dropped, doubled or reordered: the payload or a
    ``PayloadError``, never another exception."""
    rng = np.random.default_rng(7)
    payload = _payload(140_000)
    good = _split(P.segments(payload))
    for _ in range(400):
        app = [bytearray(data) for _, data in good]
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(len(app)))
            action = rng.integers(5)
            if action == 0:
                app[i][int(rng.integers(0, 60))] ^= 1 << int(rng.integers(8))
            elif action == 1:
                del app[i][int(rng.integers(0, len(app[i]) + 1)) :]
            elif action == 2:
                app.pop(i)
            elif action == 3:
                app.insert(int(rng.integers(len(app) + 1)), bytearray(app[i]))
            else:
                rng.shuffle(app)
            if not app:
                break
        try:
            assert _assemble([("APP11", bytes(data)) for data in app], payload) == payload
        except P.PayloadError:
            pass


def test_many_tiny_packets_are_read_in_linear_time():
    """100,000 one-byte packets (a hostile file can hold ~1 GB of them): seconds at most, never quadratic."""
    payload = _payload(100_000 - 60)
    box = P.box(payload)
    app = _packets(box, per_packet=1, first=52)
    start = time.perf_counter()
    assert _assemble(app[::-1], payload) == payload
    with pytest.raises(P.PayloadError, match="missing"):
        _assemble(app[:-1], payload)
    assert time.perf_counter() - start < 10
    with pytest.raises(P.PayloadError, match="missing"):  # the first packet must show the box's type
        _assemble(_packets(box, per_packet=1, first=23), payload)


def test_segments_size_is_exact():
    for n in [*SIZES, 65517 - 60 + 65517, 64 << 20]:
        content = 60 + n
        assert P.segments_size(n) == content + 20 * -(-content // 65517)
    assert P.segments_size(0) == 80


def test_the_payload_bound():
    with pytest.raises(ValueError, match="exceeds"):
        P.segments(bytes(P.MAX_PAYLOAD + 1))
    with pytest.raises(P.PayloadError, match="at most"):
        P.assemble([], P.MAX_PAYLOAD + 1, "0" * 64)


# ----------------------------------------------------------------------------- the legacy form


@pytest.mark.parametrize("n", [0, 300, FULL_LEGACY, FULL_LEGACY + 1, 200_000])
def test_legacy_segments_are_still_read(n):
    payload = _payload(n)
    app = _split(legacy_segments(payload))
    assert len(app) == max(1, -(-n // FULL_LEGACY)) and all(len(data) <= 65533 for _, data in app)
    if n == FULL_LEGACY:
        assert len(app[0][1]) == 65533
    assert _assemble(app, payload) == payload
    assert _assemble(app[::-1], payload) == payload


def test_a_legacy_file_is_still_read(tmp_path):
    payload = _payload(100_000)
    path = _write(tmp_path / "legacy.jpg", payload, legacy=True)
    assert path.read_bytes().count(b"HyperThumbnail-payload\x00") == 2
    thumbnail = read_thumbnail(path)
    assert thumbnail.payload == payload and thumbnail.payload_problem is None


@pytest.mark.parametrize("sample", ["ladybird.jpg", "garden.jpg", "dune.jpg"])
def test_the_shipped_samples_still_read(sample):
    """Real files of the legacy writer (until the samples are made again, in the JUMBF form)."""
    thumbnail = read_thumbnail(SAMPLES / sample)
    assert thumbnail.payload_problem is None and len(thumbnail.payload) == thumbnail.marker.payload_length
    # `info`'s thumbnail bytes: the file less the payload's segments, in whichever form they are
    from app.cli import describe

    report = describe(str(SAMPLES / sample))
    size = (SAMPLES / sample).stat().st_size
    legacy = len(thumbnail.payload) + 32 * -(-len(thumbnail.payload) // 65505)
    new = P.segments_size(len(thumbnail.payload))
    assert report["layers"]["thumbnail"] in (size - legacy, size - new)
    assert report["layers"]["thumbnail"] == size - thumbnail.payload_file_bytes


def test_hostile_legacy_segments_give_a_clear_error():
    payload = _payload(100_000)
    good = _split(legacy_segments(payload))
    head = b"HyperThumbnail-payload\x00"
    cases = {
        "appears twice": [*good, good[0]],
        "missing or inconsistent": good[:1],
        "truncated": [*good, ("APP11", head + b"\x01\x00")],
        "version 2": [("APP11", head + b"\x02" + good[0][1][24:]), good[1]],
    }
    for message, app in cases.items():
        with pytest.raises(P.PayloadError, match=message):
            _assemble(app, payload)
    counts = [good[0], ("APP11", good[1][1][:26] + b"\x00\x03" + good[1][1][28:])]
    with pytest.raises(P.PayloadError, match="missing or inconsistent"):
        _assemble(counts, payload)
    with pytest.raises(P.PayloadError, match="missing"):
        _assemble([("APP11", b"something else"), ("APP1", b"Exif\0\0")], payload)


# ----------------------------------------------------------------------------- other tools


def _write(path: Path, payload: bytes, legacy: bool = False) -> Path:
    marker = Marker(width=1001, height=667, scale=4, model_id="m", weights_sha256="ab" * 32, rate=0.5)
    thumb = np.random.default_rng(1).integers(0, 256, (167, 251, 3), dtype=np.uint8)
    table = [16] * 64
    if not legacy:
        write_hyperthumbnail(path, thumb, table, table, marker, payload=payload)
        return path
    meta = build_metadata(marker, marker.thumbnail_size, payload=payload)
    path.write_bytes(encode_jpeg(thumb, table, table, xmp_packet=meta.xmp, extra=legacy_segments(payload)))
    return path


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
@pytest.mark.parametrize("n", [300, FULL_JUMBF, 200_000])
def test_exiftool_reads_the_box_and_validates_the_file(tmp_path, n):
    path = _write(tmp_path / "t.jpg", _payload(n))
    run = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-validate", "-warning", "-JUMBF:all", "-Jpeg2000:all", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    tags = json.loads(run.stdout)[0]
    assert tags["ExifTool:Validate"] == "OK" and "ExifTool:Warning" not in tags, tags
    assert tags["JUMBF:JUMDLabel"] == LABEL.decode()
    assert tags["JUMBF:JUMDType"].replace("-", "") == UUID.hex()
    assert f"{n} bytes" in tags["Jpeg2000:OrgHyperthumbnailPayloadData"]


@pytest.mark.skipif(shutil.which("exiv2") is None, reason="exiv2 is not installed")
def test_exiv2_lists_the_segments(tmp_path):
    path = _write(tmp_path / "t.jpg", _payload(200_000))
    run = subprocess.run(["exiv2", "-pS", str(path)], capture_output=True, text=True, check=True)
    lines = [line for line in run.stdout.splitlines() if "APP11" in line]
    assert len(lines) == 4 and all("JPHT" in line for line in lines), run.stdout
