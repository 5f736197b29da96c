"""Fuzz read_fcs with seeded corruptions of valid hand-made files.

Every outcome must be a readable Sample or an FcsReadError naming the file: never another exception,
never a hang, never a huge allocation because a damaged file declares billions of events.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import flowkit as fk
import numpy as np
import pytest

from cytotrial.io.fcs import FcsReadError, read_fcs_with_notes
from tests.fcs_factory import FcsSpec, build_fcs, offsets_of

NAMES = ["FSC-A", "SSC-A", "FL1-A", "FL2-A", "Time"]
SEED = 20250117
KEYWORDS = [b"$TOT", b"$PAR", b"$BEGINDATA", b"$ENDDATA", b"$NEXTDATA", b"$DATATYPE", b"$BYTEORD", b"$MODE",
            b"$P1B", b"$P2R", b"$P3E", b"$P4G", b"$P1N", b"$TIMESTEP"]
NASTY_VALUES = [b"", b"0", b"-1", b"1e400", b"nan", b"99999999999999999999", b"4294967296", b"abc", b"\x00\xff",
                b"7" * 5000, b"3.5", b" 12 ", b"1,2", b"4,0", b"I", b"D"]


def base_files() -> dict[str, bytes]:
    """Valid files covering the main layouts: float/int/double, both byte orders, FCS 2.0-3.2, two data sets."""
    rng = np.random.default_rng(SEED)
    floats = rng.normal(1000, 300, (40, 5))
    ints = rng.integers(0, 1024, (40, 5))
    return {
        "f32_31_le": build_fcs(FcsSpec(floats, NAMES, keywords={"$SPILLOVER": "2,FL1-A,FL2-A,1,0.1,0.05,1",
                                                                 "$TIMESTEP": "0.01"})),
        "i16_20_be": build_fcs(FcsSpec(ints, NAMES, version="2.0", datatype="I", bits=16, byteorder=">",
                                       ranges=[1024] * 5, keywords={"$P3E": "4,1"})),
        "f64_30_pipe": build_fcs(FcsSpec(floats, NAMES, version="3.0", datatype="D", delimiter=b"|",
                                         trailer=b"00000000")),
        "mixed_32": build_fcs(FcsSpec(ints, NAMES, version="3.2", datatype="I", kinds=["I", "F", "I", "D", "I"],
                                      bits=[16, 32, 32, 64, 8], ranges=[1024, 262144, 2 ** 18, 262144, 256])),
        "lmd": build_fcs(FcsSpec(ints, NAMES, version="2.0", datatype="I", bits=16),
                         FcsSpec(floats, NAMES, version="3.0")),
    }


def _segments(blob: bytes) -> dict:
    """Where HEADER, TEXT and DATA are in a valid file, and its TEXT delimiter."""
    offsets = offsets_of(blob)
    text_start = offsets["text"][0]
    return {"header": (0, 57), "text": offsets["text"], "data": offsets["data"],
            "delimiter": blob[text_start:text_start + 1]}


def _flip(blob: bytes, rng: np.random.Generator, segments: dict, segment: str) -> tuple[bytes, str]:
    start, stop = segments[segment]
    if start >= len(blob):
        return blob, f"nothing to flip in {segment}"
    out = bytearray(blob)
    count = int(rng.integers(1, 6))
    for at in rng.integers(start, min(stop, len(blob) - 1) + 1, count):
        out[at] = int(rng.integers(0, 256))
    return bytes(out), f"{count} random bytes in {segment}"


def _truncate(blob, rng, segments):
    at = int(rng.integers(0, len(blob)))
    return blob[:at], f"truncated at byte {at} of {len(blob)}"


def _random_bytes(blob, rng, segments):
    size = int(rng.integers(0, 2 * len(blob)))
    body = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    return (blob[:6] + body if rng.random() < 0.7 else body), f"{size} random bytes"


def _header_offset(blob, rng, segments):
    field = int(rng.integers(0, 6))
    value = int(rng.choice([0, 1, 57, 58, len(blob) - 1, len(blob), len(blob) + 1, 99_999_999,
                            int(rng.integers(0, 2 * len(blob)))]))
    out = bytearray(blob)
    out[10 + 8 * field:18 + 8 * field] = f"{value:>8}".encode()
    return bytes(out), f"HEADER offset field {field} set to {value}"


def _keyword(blob, rng, segments):
    key = KEYWORDS[int(rng.integers(0, len(KEYWORDS)))]
    value = NASTY_VALUES[int(rng.integers(0, len(NASTY_VALUES)))] if rng.random() < 0.6 else str(
        int(rng.choice([0, 1, 2 ** 31, 10 ** 9, 10 ** 12, int(rng.integers(0, 10 ** 6))]))).encode()
    delimiter = segments["delimiter"]
    pattern = re.escape(delimiter + key + delimiter) + b"[^" + re.escape(delimiter) + b"]*"
    out = re.sub(pattern, lambda m: delimiter + key + delimiter + value, blob, count=1)
    return out, f"{key.decode()} set to {value[:30]!r}"


def _delete_delimiters(blob, rng, segments):
    start, stop = segments["text"]
    delimiter = segments["delimiter"]
    positions = [i for i in range(start, min(stop + 1, len(blob))) if blob[i:i + 1] == delimiter]
    if not positions:
        return blob, "no delimiter to delete"
    chosen = set(rng.choice(positions, size=min(len(positions), int(rng.integers(1, 4))), replace=False).tolist())
    return bytes(b for i, b in enumerate(blob) if i not in chosen), f"{len(chosen)} delimiters deleted"


def _shift(blob, rng, segments):
    at = int(rng.integers(0, len(blob)))
    if rng.random() < 0.5:
        count = int(rng.integers(1, 9))
        return blob[:at] + blob[at + count:], f"{count} bytes deleted at {at}"
    extra = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    return blob[:at] + extra + blob[at:], f"{len(extra)} bytes inserted at {at}"


MUTATIONS = [
    _truncate, _random_bytes, _header_offset, _keyword, _keyword, _delete_delimiters, _shift,
    lambda b, r, s: _flip(b, r, s, "header"), lambda b, r, s: _flip(b, r, s, "text"),
    lambda b, r, s: _flip(b, r, s, "data"),
]


def corrupted_cases(count: int, seed: int = SEED):
    """``count`` (name, bytes, description) corruptions, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    bases = base_files()
    names = sorted(bases)
    for index in range(count):
        base = names[index % len(names)]
        blob, description = bases[base], []
        segments = _segments(blob)
        for _ in range(1 if rng.random() < 0.75 else 2):  # a quarter of the cases combine two corruptions
            mutate = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
            blob, what = mutate(blob, rng, segments)
            description.append(what)
        yield f"case{index:04d}_{base}.fcs", blob, f"{base}: {'; '.join(description)}"


def check_outcome(path: Path, description: str) -> str:
    """'read' or 'error'; any other exception, or an error without the file name, fails the test."""
    try:
        sample, notes = read_fcs_with_notes(path)
    except FcsReadError as err:
        assert str(err).startswith(f"{path}: "), f"{description}: error does not start with the file name: {err}"
        return "error"
    except Exception as err:  # noqa: BLE001 - the point of the test
        raise AssertionError(f"{description}: {type(err).__name__}: {err}") from err
    events = sample.get_events(source="raw")
    assert isinstance(sample, fk.Sample) and events.shape == (sample.event_count, len(sample.pnn_labels))
    assert len(set(sample.pnn_labels)) == len(sample.pnn_labels), description
    assert all(isinstance(n, str) for n in notes)
    return "read"


def run_fuzz(tmp_path: Path, count: int, seed: int = SEED) -> dict[str, int]:
    outcomes = {"read": 0, "error": 0}
    for name, blob, description in corrupted_cases(count, seed):
        path = tmp_path / name
        path.write_bytes(blob)
        outcomes[check_outcome(path, description)] += 1
        path.unlink()
    return outcomes


def test_base_files_are_valid(tmp_path):
    for name, blob in base_files().items():
        (tmp_path / f"{name}.fcs").write_bytes(blob)
        sample, _ = read_fcs_with_notes(tmp_path / f"{name}.fcs")
        assert sample.event_count == 40 and sample.pnn_labels == NAMES


def test_corrupted_files_read_or_raise_one_clear_error(tmp_path):
    outcomes = run_fuzz(tmp_path, 400)  # (a hang would stop the suite; read speed is measured by benchmarks)
    assert outcomes["read"] > 20 and outcomes["error"] > 100, outcomes  # both kinds of outcome are exercised


@pytest.mark.slow
def test_many_more_corrupted_files(tmp_path):
    outcomes = run_fuzz(tmp_path, 5000, seed=SEED + 1)
    assert sum(outcomes.values()) == 5000


HUGE_SCRIPT = r"""
import json, resource, sys
from cytotrial.io.fcs import FcsReadError, read_fcs
import numpy, pandas, flowkit  # imported before the limit so only reading counts
pages = int(open("/proc/self/statm").read().split()[0])
limit = pages * resource.getpagesize() + 256 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
results = {}
try:  # proves the limit bites: 1 GiB cannot be allocated under it
    bytearray(1 << 30)
    results["probe"] = "allocated 1 GiB"
except MemoryError:
    results["probe"] = "limited"
for path in sys.argv[1:]:
    try:
        results[path] = "read %d" % read_fcs(path).event_count
    except FcsReadError as err:
        results[path] = str(err)
print(json.dumps(results))
"""


def test_huge_declared_sizes_fail_fast_without_allocating(tmp_path):
    values = np.ones((10, 5))
    files = {
        "tot.fcs": FcsSpec(values, NAMES, keywords={"$TOT": str(10 ** 9)}),
        "par.fcs": FcsSpec(values, NAMES, keywords={"$PAR": "9999"}),
        "both.fcs": FcsSpec(values, NAMES, datatype="D", keywords={"$TOT": str(2 ** 40), "$PAR": "5000"}),
        "tot_d.fcs": FcsSpec(values, NAMES, datatype="D", keywords={"$TOT": str(2 ** 40)}),
        "offsets.fcs": FcsSpec(values, NAMES, text_data=(2000, 99_999_999_999), header_data=(2000, 99_999_999)),
        "fine.fcs": FcsSpec(np.ones((20_000, 5)), NAMES),
    }
    paths = [str(tmp_path / name) for name in files]
    for path, spec in zip(paths, files.values()):
        Path(path).write_bytes(build_fcs(spec))
    done = subprocess.run([sys.executable, "-c", HUGE_SCRIPT, *paths], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["probe"] == "limited"
    assert results[paths[-1]] == "read 20000"  # the memory limit leaves room to read an ordinary file
    assert "$TOT declares 1000000000 events x 20 bytes = 20000000000 bytes" in results[paths[0]]
    assert "$PAR declares 9999 parameters but 9994 of them (from $P6N) have neither" in results[paths[1]]
    assert "$PAR declares 5000 parameters but 4995 of them" in results[paths[2]]
    assert "$TOT declares 1099511627776 events x 40 bytes" in results[paths[3]]
    assert "should hold 10 events x 20 bytes = 200 bytes from byte 2000" in results[paths[4]]
    for path in paths[:-1]:
        assert results[path].startswith(f"{path}: cannot be read as FCS: ") and "MemoryError" not in results[path]
