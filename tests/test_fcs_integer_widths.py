"""Integer FCS data of any whole number of bytes ($PnB 8 ... 64, e.g. Cytek's 24-bit files): written by the
project's writer, read back by read_fcs and by FlowCal (an independent reader that handles such widths; flowio
and flowkit refuse them, fcsparser 0.2.8 decodes them wrongly), and built value by value with int.to_bytes."""

from __future__ import annotations

import FlowCal
import numpy as np
import pytest

from cytotrial.io.fcs import FcsEventBlocks, read_fcs_with_notes
from cytotrial.io.fcs_writer import write_integer_fcs
from tests.fcs_factory import FcsSpec, write_fcs_file
from tests.fcs_references import compare_with_references

NAMES = ["FSC-A", "SSC-A", "FL1-A", "Time"]


def values_of_width(bits: int, rows: int = 50, seed: int = 1) -> np.ndarray:
    """Whole numbers over the full range of ``bits`` bits, with both ends and a value of every byte set."""
    rng = np.random.default_rng(seed)
    top = 2 ** bits - 1
    values = rng.integers(0, 2 ** min(bits, 63), size=(rows, len(NAMES)), dtype=np.uint64)
    values[0] = [0, top, 1, top - 1]
    values[1] = [int.from_bytes(bytes(range(1, bits // 8 + 1)), "big")] * len(NAMES)  # 0x010203...
    return values


@pytest.mark.parametrize("bits", [8, 16, 24, 32, 40, 48, 56, 64])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_the_writer_round_trips_every_whole_byte_width(tmp_path, bits, byteorder):
    values = values_of_width(bits)
    path = tmp_path / f"int{bits}.fcs"
    write_integer_fcs(path, values, NAMES, [None, None, "CD4", None], keywords={"$CYT": "Test"}, bits=bits,
                      byteorder=byteorder)
    sample, notes = read_fcs_with_notes(path)
    assert notes == [] and sample.pns_labels[2] == "CD4" and sample.metadata["p1b"] == str(bits)
    assert len(path.read_bytes()) - sample.event_count * len(NAMES) * bits // 8 == int(sample.metadata["begindata"])
    read = sample.get_events(source="raw")
    assert np.array_equal(read, values.astype(np.float64))  # float64 holds every value exactly up to 2**53
    # flowio and flowkit read 8, 16 and 32-bit integers only; the others are compared with FlowCal and int.to_bytes below
    odd_width = {r: "refuses: flowio reads only 8, 16 and 32-bit integers" for r in ("flowio", "flowkit")}
    compare_with_references(path, sample, None if bits in (8, 16, 32) else odd_width)
    if bits <= 48:
        assert read[1, 0] == int.from_bytes(bytes(range(1, bits // 8 + 1)), "big")


@pytest.mark.parametrize("bits", [24, 40])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_flowcal_reads_the_writers_files_as_written(tmp_path, bits, byteorder):
    values = values_of_width(bits)
    path = tmp_path / "cytek.fcs"
    write_integer_fcs(path, values, NAMES, [None] * 4, keywords={}, bits=bits, byteorder=byteorder)
    independent = np.asarray(FlowCal.io.FCSData(str(path)), dtype=np.uint64)
    assert np.array_equal(independent, values)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_files_built_value_by_value_read_back(tmp_path, byteorder):
    """Mixed widths in one event (8, 24, 16 and 48 bits), bytes made by int.to_bytes, not by the writer."""
    values = np.array([[255, 2 ** 24 - 1, 65535, 2 ** 48 - 1], [1, 0x010203, 0x0102, 0x010203040506],
                       [0, 70000, 7, 2 ** 40]], dtype=np.uint64)
    spec = FcsSpec(values, NAMES, datatype="I", bits=[8, 24, 16, 48], byteorder=byteorder,
                   ranges=[256, 2 ** 24, 65536, 2 ** 48])
    sample, notes = read_fcs_with_notes(write_fcs_file(tmp_path / "mixed.fcs", spec))
    assert notes == [] and np.array_equal(sample.get_events(source="raw"), values.astype(np.float64))


def test_24_bit_values_are_masked_to_the_bits_of_pnr(tmp_path):
    stored = np.array([[(1 << 23) | 5, 262143, (1 << 18) | 9, 3]], dtype=np.uint64)
    spec = FcsSpec(stored, NAMES, datatype="I", bits=24, ranges=[262144] * 4)
    sample, notes = read_fcs_with_notes(write_fcs_file(tmp_path / "masked.fcs", spec))
    assert sample.get_events(source="raw").tolist() == [[5.0, 262143.0, 9.0, 3.0]]
    assert any("'FSC-A': 1 values" in n and "masked to 18 bits" in n for n in notes)


def test_24_bit_data_set_after_an_fcs_2_one(tmp_path):
    """A multi-data-set file (as Beckman's LMD): FCS 2.0 16-bit first, then the FCS 3.1 24-bit data set read."""
    first = FcsSpec(np.array([[1, 2, 3, 4]]), NAMES, version="2.0", datatype="I", bits=16)
    values = values_of_width(24, rows=7)
    second = FcsSpec(values, NAMES, version="3.1", datatype="I", bits=24, ranges=[2 ** 24] * 4, byteorder=">")
    path = write_fcs_file(tmp_path / "two.lmd", first, second)
    sample, notes = read_fcs_with_notes(path)
    assert np.array_equal(sample.get_events(source="raw"), values.astype(np.float64))
    assert any("2 data sets" in n and "data set 2 (FCS3.1)" in n for n in notes)
    blocks = FcsEventBlocks.open(path, chunk_rows=3)  # the preprocessing's block reader, blocks of 3 events
    assert np.array_equal(np.concatenate([b for _, b in blocks]), values.astype(np.float64))


def test_the_writer_refuses_values_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError, match=r"channel 'SSC-A' holds values that are not whole numbers from 0 to 16777215"):
        write_integer_fcs(tmp_path / "x.fcs", np.array([[1, 2 ** 24, 0, 0]]), NAMES, [None] * 4, keywords={}, bits=24)
    with pytest.raises(ValueError, match="whole number of bytes"):
        write_integer_fcs(tmp_path / "x.fcs", np.array([[1, 2, 0, 0]]), NAMES, [None] * 4, keywords={}, bits=20)
    with pytest.raises(ValueError, match=r"\['\$TOT'\] are set by the writer"):
        write_integer_fcs(tmp_path / "x.fcs", np.array([[1, 2, 0, 0]]), NAMES, [None] * 4, keywords={"$TOT": "1"},
                          bits=24)
