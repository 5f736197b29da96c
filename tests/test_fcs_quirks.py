"""read_fcs on hand-made files: every tolerated quirk gives the values that were written, every defect one error."""

from __future__ import annotations

import logging
import re
from array import array

import flowio
import flowkit as fk
import numpy as np
import pytest

from cytotrial.io.fcs import FcsReadError, read_fcs, read_fcs_with_notes
from cytotrial.io.fcs_segments import parse_text
from tests.fcs_references import compare_with_references
from tests.fcs_factory import FcsSpec, build_data_set, build_fcs, encode_text, offsets_of, write_fcs_file

NAMES = ["FSC-A", "SSC-A", "FL1-A", "Time"]
INTS = np.array([[0, 1, 2, 3], [1023, 512, 7, 100], [5, 6, 1000, 200]])
FLOATS = np.array([[0.5, -1.25, 3.0e4, 1.0], [1e-3, 2.5, -7.75, 2.0], [262143.0, 0.0, 9.5, 3.0]])


def read(tmp_path, *specs, name="quirk.fcs", references=None):
    """Write the file, read it with read_fcs_with_notes, and check our reading against flowio's and flowkit's
    (tests/fcs_references.py): the same events and keywords, unless ``references`` says which reader refuses the
    file or reads it otherwise, and why."""
    path = write_fcs_file(tmp_path / name, *specs)
    sample, notes = read_fcs_with_notes(path)
    compare_with_references(path, sample, references)
    return sample, notes


def both(reason: str) -> dict[str, str]:
    """flowio and flowkit (which reads FCS files through flowio) alike: 'refuses: ...' or 'differs: ...'."""
    return {"flowio": reason, "flowkit": reason}


# Why flowio 1.4 / flowkit 1.3 cannot be the reference for some quirks (then the test checks the values written by
# tests/fcs_factory.py, which packs each value with numpy or int.to_bytes):
ONE_WIDTH_ONLY = both("refuses: flowio decodes every parameter with one width and type ('cannot reshape')")
SEVERAL_DATA_SETS = both("refuses: several data sets (MultipleDataSetsError); compared with read_multiple_data_sets")
OFFSETS_DISAGREE = both("refuses: HEADER and TEXT DATA offsets disagree (DataOffsetDiscrepancyError)")


def raw(sample):
    return sample.get_events(source="raw")


def has_note(notes, *words):
    return any(all(w in n for w in words) for n in notes)


# --- versions, data types, byte orders, delimiters -------------------------------------------------------------

@pytest.mark.parametrize("version", ["2.0", "3.0", "3.1", "3.2"])
@pytest.mark.parametrize("datatype,bits,values", [("I", 16, INTS), ("I", 32, INTS * 1000), ("I", 8, INTS % 256),
                                                  ("F", 32, FLOATS), ("D", 64, FLOATS * np.pi)])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_every_version_type_and_byte_order_reads_back_the_written_values(tmp_path, version, datatype, bits,
                                                                          values, byteorder):
    ranges = [2 ** bits] * 4 if datatype == "I" else None
    spec = FcsSpec(values, NAMES, version=version, datatype=datatype, bits=bits, byteorder=byteorder, ranges=ranges)
    sample, notes = read(tmp_path, spec)
    expected = values.astype(np.float32) if datatype == "F" else values
    assert np.array_equal(raw(sample), expected.astype(np.float64))
    assert (sample.version, sample.event_count, sample.pnn_labels, notes) == (version, 3, NAMES, [])


@pytest.mark.parametrize("delimiter", [b"/", b"|", b"\\", b"*", b"\x0c", b",", b"\x1e"])
def test_any_delimiter_and_escaped_delimiters_inside_values(tmp_path, delimiter):
    text_value = f"01{delimiter.decode()}JAN{delimiter.decode()}2024"
    spec = FcsSpec(FLOATS, NAMES, delimiter=delimiter, markers=["", "", f"CD3{delimiter.decode()}CD28", ""],
                   keywords={"$DATE": text_value, "$SPILLOVER": "1,FL1-A,1.0"})
    # flowio splits TEXT with a regular expression: a doubled delimiter that is a regex metacharacter stays doubled
    regex_special = both("differs: flowio keeps an escaped (doubled) | \\ or * delimiter doubled in values")
    sample, notes = read(tmp_path, spec, references=regex_special if delimiter in (b"|", b"\\", b"*") else None)
    assert sample.metadata["date"] == text_value
    assert sample.pns_labels[2] == f"CD3{delimiter.decode()}CD28"
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert notes == []


def test_empty_keyword_values_written_as_doubled_delimiters(tmp_path):
    spec = FcsSpec(FLOATS, NAMES, escape=False, keywords={"$OP": "", "$SRC": "tube 1", "$COM": ""})
    sample, notes = read(tmp_path, spec)
    assert (sample.metadata["op"], sample.metadata["src"], sample.metadata["com"]) == ("", "tube 1", "")
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "empty keyword values")


@pytest.mark.parametrize("text,expected", [
    (b"/A/x///B/y/", {"a": "x/", "b": "y"}),  # a value ending with an escaped delimiter
    (b"/A/1/B/2", {"a": "1", "b": "2"}),  # no closing delimiter
    (b"|$P1N|FSC-A|$p1s| CD3 |", {"p1n": "FSC-A", "p1s": " CD3 "}),  # keys case-insensitive, values as written
    (b"/A/caf\xe9/", {"a": "caf\xe9"}),  # Latin-1 text
])
def test_text_segment_parsing(text, expected):
    keywords, notes = parse_text(text)
    assert keywords == expected and notes == []


def test_metadata_keys_are_lowercase_without_dollar_and_spill_keywords_are_kept(tmp_path):
    spill = "2,FL1-A,SSC-A,1,0.1,0.02,1"
    spec = FcsSpec(FLOATS, NAMES, keywords={"$SPILL": spill, "$SPILLOVER": spill.replace("0.1", "0.2"),
                                            "$CYT": "FACSCanto II", "CST SETUP STATUS": "SUCCESS"})
    sample, _ = read(tmp_path, spec)
    assert sample.metadata["spill"] == spill and sample.metadata["spillover"] == spill.replace("0.1", "0.2")
    assert sample.metadata["cyt"] == "FACSCanto II" and sample.metadata["cst setup status"] == "SUCCESS"
    assert sample.metadata["par"] == "4" and sample.metadata["p1n"] == "FSC-A"


def test_repeated_keyword_keeps_the_first_and_is_noted(tmp_path):
    spec = FcsSpec(FLOATS, NAMES, keywords={"$CYT": "Attune NxT", "CYT": "other", "$FIL": "a.fcs"})
    sample, notes = read(tmp_path, spec, references=both("differs: flowio keeps the last of a repeated keyword"))
    assert sample.metadata["cyt"] == "Attune NxT"
    assert has_note(notes, "more than once", "CYT")


# --- channel names -----------------------------------------------------------------------------------------------

def test_repeated_channel_names_get_suffixes_and_a_note(tmp_path):
    names = ["FSC-A", "FL1-A", "FL1-A", "FSC-A", "FL1-A_2"]
    values = np.arange(15, dtype=float).reshape(3, 5)
    sample, notes = read(tmp_path, FcsSpec(values, names))
    assert sample.pnn_labels == ["FSC-A", "FL1-A", "FL1-A_3", "FSC-A_2", "FL1-A_2"]
    assert list(sample.channels.pnn) == sample.pnn_labels
    assert np.array_equal(raw(sample)[:, sample.get_channel_index("FL1-A_3")], values[:, 2])
    assert np.array_equal(raw(sample)[:, sample.get_channel_index("FSC-A_2")], values[:, 3])
    assert has_note(notes, "$P3N", "'FL1-A'", "FL1-A_3") and has_note(notes, "$P4N", "FSC-A_2")


def test_missing_pns_gives_empty_markers_and_missing_pnn_a_placeholder(tmp_path):
    spec = FcsSpec(FLOATS, NAMES, markers=["", "", "CD3", ""], omit=["$P2N"])
    sample, notes = read(tmp_path, spec)
    assert sample.pns_labels == ["", "", "CD3", ""]
    assert sample.pnn_labels == ["FSC-A", "P2", "FL1-A", "Time"]
    assert has_note(notes, "$P2N", "'P2'")


def test_channel_names_are_stripped_of_padding(tmp_path):
    sample, _ = read(tmp_path, FcsSpec(FLOATS, [" FSC-A", "SSC-A ", "FL1-A", "Time"]))
    assert sample.pnn_labels == NAMES


# --- integer storage: bit masks, odd widths, mixed widths --------------------------------------------------------

@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_16_bit_storage_is_masked_to_the_bits_of_pnr(tmp_path, byteorder):
    stored = np.array([[0xFC00 | 5, 1023, 0x8000 | 999, 7], [1024, 2048 + 3, 0xFFFF, 65535]])
    spec = FcsSpec(stored, NAMES, datatype="I", bits=16, ranges=[1024, 1000, 1024, 65536], byteorder=byteorder)
    sample, notes = read(tmp_path, spec)
    expected = np.array([[5, 1023, 999, 7], [0, 3, 1023, 65535]], dtype=float)
    assert np.array_equal(raw(sample), expected)
    assert sample.channels.pnr.tolist() == [1024.0, 1000.0, 1024.0, 65536.0]
    assert has_note(notes, "'FSC-A'", "2 values", "masked to 10 bits")
    assert not has_note(notes, "'Time'")


def test_32_bit_integers_with_an_18_bit_range_are_masked(tmp_path):
    stored = np.array([[(1 << 20) + 12345, 262143, 1 << 18, 5]])
    spec = FcsSpec(stored, NAMES, datatype="I", bits=32, ranges=[262144] * 4)
    sample, _ = read(tmp_path, spec)
    assert raw(sample).tolist() == [[12345.0, 262143.0, 0.0, 5.0]]


def test_pnb_that_is_not_a_whole_byte_is_read_from_the_next_width_and_masked(tmp_path):
    stored = np.array([[0xF000 | 1000, 3, 4, 5], [1023, 0x0C00 | 9, 0, 1]])
    spec = FcsSpec(stored, NAMES, datatype="I", bits=10, storage_bits=16, ranges=[4096] * 4)
    sample, notes = read(tmp_path, spec, references=ONE_WIDTH_ONLY)  # $PnB 10 is not a width flowio reads
    assert raw(sample).tolist() == [[1000, 3, 4, 5], [1023, 9, 0, 1]]
    assert has_note(notes, "$P1B is 10", "16-bit")


def test_mixed_integer_widths(tmp_path):
    stored = np.array([[200, 60000, 4_000_000_000, 7], [1, 2, 3, 4]])
    spec = FcsSpec(stored, NAMES, datatype="I", bits=[8, 16, 32, 64], ranges=[256, 65536, 2 ** 32, 2 ** 40],
                   byteorder=">")
    sample, notes = read(tmp_path, spec, references=ONE_WIDTH_ONLY)
    assert np.array_equal(raw(sample), stored.astype(float)) and notes == []


def test_fcs_3_2_mixed_integer_and_float_parameters(tmp_path):
    stored = np.array([[3, 1.5, 2.25, 9], [65535, -4.0, 1e6, 0]])
    spec = FcsSpec(stored, NAMES, version="3.2", datatype="I", kinds=["I", "F", "D", "I"], bits=[16, 32, 64, 32],
                   ranges=[65536, 262144, 262144, 2 ** 32])
    sample, notes = read(tmp_path, spec, references=ONE_WIDTH_ONLY)
    assert np.array_equal(raw(sample), stored) and notes == []


# --- amplification, gain, time step --------------------------------------------------------------------------------

def test_fcs_2_0_log_amplified_integer_channels_are_linearised(tmp_path):
    stored = np.array([[0, 256, 512, 10], [1023, 768, 100, 20]])
    spec = FcsSpec(stored, ["FSC-H", "SSC-H", "FL1-H", "FL2-H"], version="2.0", datatype="I", bits=16,
                   ranges=[1024] * 4, keywords={"$P2E": "4,1", "$P3E": "4,0", "$P4E": "3.0,0.5", "$P4G": "2"})
    # flowio divides a log-amplified channel by $PnG too (FCS 3.1: $PnG applies to linear channels only)
    sample, notes = read(tmp_path, spec, references=both("differs: flowio divides the log channel FL2-H by $P4G"))
    events = raw(sample)
    assert np.array_equal(events[:, 0], [0, 1023])
    assert np.allclose(events[:, 1], 10 ** (4 * stored[:, 1] / 1024))
    assert np.allclose(events[:, 2], 10 ** (4 * stored[:, 2] / 1024))  # log(0) value 0 means 1
    assert np.allclose(events[:, 3], 10 ** (3 * stored[:, 3] / 1024) * 0.5)  # gain ignored on a log channel
    assert has_note(notes, "$P4G", "log-amplified")
    assert sample.channels.pne.tolist() == [(0.0, 0.0), (4.0, 1.0), (4.0, 1.0), (3.0, 0.5)]


def test_log_pne_on_float_data_is_ignored_with_a_note(tmp_path):
    # flowio applies the log $PnE to float data (FCS 3.1: $PnE must be 0,0 for float data)
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, keywords={"$P3E": "4,1"}),
                         references=both("differs: flowio takes $P3E 4,1 on float data as log amplification"))
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "$P3E", "linear")


def test_gain_divides_linear_channels_and_timestep_scales_time(tmp_path):
    spec = FcsSpec(FLOATS, NAMES, keywords={"$P2G": "4.0", "$P4G": "10", "$TIMESTEP": "0.01"})
    sample, notes = read(tmp_path, spec)
    stored = FLOATS.astype(np.float32).astype(float)
    assert np.allclose(raw(sample)[:, 1], stored[:, 1] / 4)
    assert np.allclose(raw(sample)[:, 3], stored[:, 3] * 0.01)  # time: $TIMESTEP only, never $PnG
    assert notes == []


@pytest.mark.parametrize("timestep", ["", "abc", "-1"])
def test_unusable_timestep_leaves_time_unscaled(tmp_path, timestep):
    references = {"": None, "abc": both("refuses: $TIMESTEP 'abc' is not a number"),
                  "-1": both("differs: flowio multiplies time by the negative $TIMESTEP")}[timestep]
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, keywords={"$TIMESTEP": timestep}, escape=True),
                         references=references)
    assert np.array_equal(raw(sample)[:, 3], FLOATS[:, 3])
    assert has_note(notes, "$TIMESTEP")


def test_unusable_pnr_png_pne_values_are_replaced_with_notes(tmp_path):
    spec = FcsSpec(FLOATS, NAMES, ranges=["262144.0", "n/a", 1024, 1024],
                   keywords={"$P3G": "zero", "$P3E": "log"})
    sample, notes = read(tmp_path, spec, references=both("refuses: $P2R 'n/a' is not a number"))
    assert sample.channels.pnr.tolist() == [262144.0, 262144.0, 1024.0, 1024.0]
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "$P2R") and has_note(notes, "$P3G") and has_note(notes, "$P3E")


# --- offsets -------------------------------------------------------------------------------------------------------

def _true_data(spec):
    return offsets_of(build_data_set(spec))["data"]


def test_wrong_header_data_offsets_fall_back_to_text(tmp_path):
    spec = FcsSpec(FLOATS, NAMES)
    start, stop = _true_data(spec)
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, header_data=(start - 8, stop - 8)), references=OFFSETS_DISAGREE)
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "DATA offsets disagree", "HEADER says", "TEXT")


def test_wrong_text_data_offsets_fall_back_to_the_header(tmp_path):
    spec = FcsSpec(FLOATS, NAMES)
    start, stop = _true_data(spec)
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, text_data=(start + 4, stop + 100)), references=OFFSETS_DISAGREE)
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "DATA offsets disagree", "HEADER (bytes")


def test_zero_header_offsets_of_large_files_are_not_a_discrepancy(tmp_path):
    # flowio takes HEADER offsets of 0 as a discrepancy, though FCS 3.x writes 0 there for offsets > 99,999,999
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, header_data=(0, 0)), references=OFFSETS_DISAGREE)
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32)) and notes == []


def test_fcs_2_0_uses_header_offsets_even_if_text_has_others(tmp_path):
    spec = FcsSpec(INTS, NAMES, version="2.0", datatype="I")
    start, stop = _true_data(spec)
    sample, notes = read(tmp_path, FcsSpec(INTS, NAMES, version="2.0", datatype="I", text_data=(start + 2, stop)))
    assert np.array_equal(raw(sample), INTS) and has_note(notes, "HEADER (bytes")


def test_end_offset_written_exclusive_is_tolerated(tmp_path):
    spec = FcsSpec(FLOATS, NAMES)
    start, stop = _true_data(spec)
    blob = build_fcs(FcsSpec(FLOATS, NAMES, text_data=(start, stop + 1), header_data=(start, stop + 1),
                             trailer=b"00000000"))
    (tmp_path / "excl.fcs").write_bytes(blob)
    sample, notes = read_fcs_with_notes(tmp_path / "excl.fcs")
    compare_with_references(tmp_path / "excl.fcs", sample,
                            both("refuses: the end offset one byte past the data is 'off by 1' to flowio"))
    with pytest.warns(UserWarning, match="reported incorrect data offset"):  # flowio's own tolerance, with a warning
        tolerant = flowio.FlowData(str(tmp_path / "excl.fcs"), ignore_offset_error=True)
    assert np.array_equal(raw(sample), tolerant.as_array())
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "one byte past")


def test_missing_tot_in_fcs_2_0_is_counted_from_the_data_size(tmp_path):
    sample, notes = read(tmp_path, FcsSpec(INTS, NAMES, version="2.0", datatype="I", omit=["$TOT"]),
                         references=both("refuses: no $TOT (KeyError 'tot')"))
    assert sample.event_count == 3 and np.array_equal(raw(sample), INTS)
    assert has_note(notes, "$TOT is missing", "3 events")


def test_crc_trailer_and_missing_mode_are_fine(tmp_path):
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, trailer=b"00000000", omit=["$MODE"]),
                         references=both("refuses: no $MODE (KeyError 'mode')"))
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32)) and notes == []


def test_supplemental_text_adds_keywords_without_overriding(tmp_path):
    stext = encode_text([("$SPILLOVER", "1,FL1-A,1"), ("$CYT", "ignored")], b"|")
    base = FcsSpec(FLOATS, NAMES, keywords={"$CYT": "Aurora", "$BEGINSTEXT": "0" * 10, "$ENDSTEXT": "0" * 10})
    begin = len(build_fcs(base))
    spec = FcsSpec(FLOATS, NAMES, trailer=stext, keywords={"$CYT": "Aurora", "$BEGINSTEXT": f"{begin:010d}",
                                                           "$ENDSTEXT": f"{begin + len(stext) - 1:010d}"})
    sample, notes = read(tmp_path, spec)
    assert sample.metadata["spillover"] == "1,FL1-A,1" and sample.metadata["cyt"] == "Aurora" and notes == []


# --- several data sets -------------------------------------------------------------------------------------------

def test_lmd_file_reads_the_fcs_3_data_set_not_the_fcs_2_one(tmp_path):
    first = FcsSpec(INTS, NAMES, version="2.0", datatype="I", bits=16, keywords={"$CYT": "Cytomics FC 500"})
    second = FcsSpec(FLOATS, NAMES, version="3.0", datatype="F", keywords={"$CYT": "Cytomics FC 500"})
    sample, notes = read(tmp_path, first, second, name="beckman.lmd", references=SEVERAL_DATA_SETS)
    assert sample.version == "3.0"
    assert np.array_equal(raw(sample), flowio.read_multiple_data_sets(str(tmp_path / "beckman.lmd"))[1].as_array())
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "2 data sets", "data set 2 (FCS3.0)")


def test_only_fcs_2_data_sets_reads_the_first(tmp_path):
    first = FcsSpec(INTS, NAMES, version="2.0", datatype="I")
    second = FcsSpec(INTS + 1, NAMES, version="2.0", datatype="I")
    sample, notes = read(tmp_path, first, second, references=SEVERAL_DATA_SETS)
    assert np.array_equal(raw(sample), INTS) and has_note(notes, "data set 1 (FCS2.0)")
    assert np.array_equal(raw(sample), flowio.read_multiple_data_sets(str(tmp_path / "quirk.fcs"))[0].as_array())


def test_nextdata_past_the_end_of_file_is_ignored(tmp_path):
    sample, notes = read(tmp_path, FcsSpec(FLOATS, NAMES, keywords={"$NEXTDATA": "99999999"}),
                         references=both("refuses: $NEXTDATA names a second data set (MultipleDataSetsError)"))
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32)) and has_note(notes, "$NEXTDATA", "past the end")


def test_nextdata_into_garbage_after_an_fcs_2_data_set_is_an_error(tmp_path):
    blob = build_fcs(FcsSpec(INTS, NAMES, version="2.0", datatype="I", keywords={"$NEXTDATA": "300"}))
    path = tmp_path / "chain.fcs"
    path.write_bytes(blob + b"\x00" * 400)
    with pytest.raises(FcsReadError, match=r"chain\.fcs: cannot be read as FCS: \$NEXTDATA names a data set at byte"):
        read_fcs(path)


# --- compatibility and logging -------------------------------------------------------------------------------------

def test_flowio_written_files_read_exactly_like_flowkit(tmp_path):
    values = np.random.default_rng(3).normal(500, 200, (200, 4)).astype(np.float32)
    path = tmp_path / "flowio.fcs"
    with open(path, "wb") as handle:
        flowio.create_fcs(handle, array("f", values.ravel().tolist()), NAMES, opt_channel_names=["", "", "CD4", ""],
                          metadata_dict={"$SPILLOVER": "1,FL1-A,1", "$TIMESTEP": "0.1", "$P3G": "2"})
    sample, notes = read_fcs_with_notes(path)
    compare_with_references(path, sample)
    reference = fk.Sample(str(path), subsample=0)
    assert np.array_equal(raw(sample), reference.get_events(source="raw"))
    assert sample.metadata == reference.metadata and notes == []
    assert sample.channels.equals(reference.channels)
    assert (sample.pnn_labels, sample.pns_labels, sample.version) == (
        reference.pnn_labels, reference.pns_labels, reference.version)
    assert (sample.fluoro_indices, sample.scatter_indices, sample.time_index) == (
        reference.fluoro_indices, reference.scatter_indices, reference.time_index)


def test_read_fcs_logs_quirk_notes(tmp_path, caplog):
    path = write_fcs_file(tmp_path / "dup.fcs", FcsSpec(FLOATS, ["A", "A", "B", "Time"]))
    with caplog.at_level(logging.WARNING, logger="cytotrial.io.fcs"):
        sample = read_fcs(path)
    compare_with_references(path, sample)
    assert isinstance(sample, fk.Sample) and sample.pnn_labels[1] == "A_2"
    assert "dup.fcs: $P2N repeats the channel name 'A'" in caplog.text


def test_zero_event_file_reads_as_empty(tmp_path):
    sample, notes = read(tmp_path, FcsSpec(np.zeros((0, 4)), NAMES),
                         references=both("refuses: the empty DATA segment's offsets 0-0 are 'off by 1' to flowio"))
    assert sample.event_count == 0 and raw(sample).shape == (0, 4) and notes == []


# --- defects: one FcsReadError naming the file and the problem ----------------------------------------------------

def _corrupt(tmp_path, blob: bytes, name="bad.fcs"):
    path = tmp_path / name
    path.write_bytes(blob)
    with pytest.raises(FcsReadError) as caught:
        read_fcs(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message


def _spec(**changes):
    return FcsSpec(**{"events": FLOATS, "names": NAMES, **changes})


@pytest.mark.parametrize("changes,expected", [
    ({"keywords": {"$TOT": "999999999999"}}, r"\$TOT declares 999999999999 events x 16 bytes .* truncated or \$TOT"),
    ({"keywords": {"$PAR": "4000000"}}, r"\$PAR declares 4000000 parameters"),
    ({"keywords": {"$PAR": "0"}}, r"\$PAR declares 0 parameters"),
    ({"keywords": {"$PAR": "four"}}, r"\$PAR is 'four', which is not a count"),
    ({"keywords": {"$MODE": "X"}}, r"\$MODE is 'X'; it must be L"),
    ({"omit": ["$PAR"]}, r"no \$PAR keyword"),
    ({"keywords": {"$MODE": "C"}}, r"\$MODE is 'C' \(histogram data\)"),
    ({"keywords": {"$DATATYPE": "A"}}, r"ASCII event data"),
    ({"keywords": {"$DATATYPE": "Q"}}, r"\$DATATYPE is 'Q'; it must be I, F or D"),
    ({"keywords": {"$BYTEORD": "3,4,1,2"}}, r"\$BYTEORD is '3,4,1,2'"),
    ({"datatype": "I", "events": INTS, "keywords": {"$P2B": "0"}}, r"\$P2B is '0'"),
    ({"version": "4.0"}, r"declares FCS version b'FCS4.0'"),
    ({"header_text": (10, 300)}, r"TEXT segment at bytes 10-300, which is not after the HEADER"),
    ({"header_text": (256, 999_999)}, r"TEXT segment at bytes 256-999999 but the file has only \d+ bytes"),
    ({"delimiter": b"A"}, r"starts with b'A', which cannot be a delimiter"),
    ({"text_data": (0, 0), "header_data": (0, 0)}, r"neither the HEADER nor \$BEGINDATA/\$ENDDATA .*both are empty"),
    ({"text_data": (300, 400), "header_data": (20, 40)}, r"TEXT says bytes 300-400; HEADER says bytes 20-40"),
    ({"keywords": {"$PAR": "6"}}, r"\$PAR declares 6 parameters but 2 of them \(from \$P5N\) have neither"),
])
def test_declared_nonsense_gets_one_clear_error(tmp_path, changes, expected):
    message = _corrupt(tmp_path, build_fcs(_spec(**changes)))
    assert re.search("cannot be read as FCS: .*" + expected, message), message
    assert "Re-export" in message or "Export" in message or "Convert" in message


def test_truncated_data_segment_says_truncated(tmp_path):
    blob = build_fcs(_spec())
    message = _corrupt(tmp_path, blob[:-10], name="cut.fcs")
    assert "should hold 3 events x 16 bytes = 48 bytes" in message and "the file is truncated" in message


def test_truncated_text_segment_says_truncated(tmp_path):
    blob = build_fcs(_spec())
    message = _corrupt(tmp_path, blob[:300], name="cut_text.fcs")
    assert "TEXT segment at bytes 256-" in message and "the file is truncated" in message


def test_data_segment_shorter_than_tot_inside_a_longer_file(tmp_path):
    start, stop = _true_data(_spec())
    blob = build_fcs(_spec(text_data=(start, stop - 16), header_data=(start, stop - 16), trailer=b"0" * 64))
    message = _corrupt(tmp_path, blob)
    assert "DATA segment holds 32 bytes" in message and "$TOT or the DATA offsets are wrong" in message


def test_garbled_header_offsets(tmp_path):
    blob = bytearray(build_fcs(_spec()))
    blob[10:18] = b"  ab0x1 "
    message = _corrupt(tmp_path, bytes(blob))
    assert "holds b'  ab0x1 " in message and "HEADER is corrupt" in message


def test_second_data_set_with_offsets_counted_from_the_file_start(tmp_path):
    first = FcsSpec(INTS, NAMES, version="2.0", datatype="I")
    data_bytes = FLOATS.size * 4
    start = 0
    for _ in range(5):  # the offsets are written in TEXT, whose length depends on them
        absolute = FcsSpec(FLOATS, NAMES, version="3.0", header_data=(0, 0),
                           text_data=(start, start + data_bytes - 1))
        blob = build_fcs(first, absolute)
        if len(blob) - data_bytes == start:
            break
        start = len(blob) - data_bytes
    (tmp_path / "abs.lmd").write_bytes(blob)
    sample, notes = read_fcs_with_notes(tmp_path / "abs.lmd")
    # flowio refuses several data sets, and its read_multiple_data_sets refuses this one too (TEXT offsets counted
    # from the file start disagree with its HEADER's 0): the reference is the values written
    compare_with_references(tmp_path / "abs.lmd", sample, SEVERAL_DATA_SETS)
    with pytest.raises(Exception, match="discrepancy in the DATA start byte location: 0 \\(HEADER\\)"):
        flowio.read_multiple_data_sets(str(tmp_path / "abs.lmd"))
    assert np.array_equal(raw(sample), FLOATS.astype(np.float32))
    assert has_note(notes, "TEXT counted from the start of the file")


# --- reading in blocks ------------------------------------------------------------------------------------------------

BLOCK_REFERENCES = {"mixed integer and float": ONE_WIDTH_ONLY,
                    "gain and bad timestep": both("refuses: $TIMESTEP 'abc' is not a number")}
BLOCK_CASES = {
    "masked 16-bit": dict(datatype="I", bits=16, ranges=[1024, 1000, 1024, 65536]),
    "mixed integer and float": dict(version="3.2", datatype="I", kinds=["I", "F", "D", "I"], bits=[16, 32, 64, 32],
                                    ranges=[1024, 262144, 262144, 2 ** 32]),
    "log amplification": dict(version="2.0", datatype="I", bits=16, ranges=[1024] * 4,
                              keywords={"$P1E": "4,1", "$P2E": "4,1"}),
    "gain and bad timestep": dict(datatype="F", bits=32, keywords={"$P2G": "4.0", "$TIMESTEP": "abc"}, escape=True),
}


@pytest.mark.parametrize("case", list(BLOCK_CASES))
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_blocks_give_the_values_and_notes_of_the_whole_file(tmp_path, case, chunk_rows):
    from cytotrial.io.fcs import FcsEventBlocks

    rng = np.random.default_rng(7)
    spec_args = dict(BLOCK_CASES[case])
    if spec_args["datatype"] == "F":
        stored = rng.normal(100, 50, size=(203, 4))
        stored[[3, 150], 2] = np.nan  # non-finite values are counted over all blocks
    else:
        stored = rng.integers(0, 65536, size=(203, 4)).astype(float)
        if spec_args.get("kinds"):
            stored[:, 1] = rng.normal(0, 1e3, 203)
            stored[[5, 90, 200], 2] = np.inf
    path = write_fcs_file(tmp_path / "blocks.fcs", FcsSpec(stored, NAMES, **spec_args))
    sample, notes = read_fcs_with_notes(path)
    compare_with_references(path, sample, BLOCK_REFERENCES.get(case))
    blocks = FcsEventBlocks.open(path, chunk_rows=chunk_rows)
    pieces = list(blocks)
    assert [start for start, _ in pieces] == list(range(0, 203, chunk_rows))
    values = np.concatenate([block for _, block in pieces])
    assert np.array_equal(values, raw(sample), equal_nan=True)
    assert blocks.notes == notes and blocks.metadata == sample.metadata and blocks.version == sample.version
    assert np.array_equal(np.concatenate([b for _, b in blocks]), values, equal_nan=True)  # a second pass
    assert blocks.notes == notes  # ... adds no notes twice


def test_blocks_of_a_truncated_file_name_the_file(tmp_path):
    from cytotrial.io.fcs import FcsEventBlocks

    path = write_fcs_file(tmp_path / "cut.fcs", FcsSpec(FLOATS, NAMES))
    blob = path.read_bytes()
    data_start, _ = offsets_of(blob)["data"]
    path.write_bytes(blob[:data_start + 20])
    with pytest.raises(FcsReadError, match=r"cut\.fcs.*truncated"):
        list(FcsEventBlocks.open(path))
