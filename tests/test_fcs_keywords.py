"""results/tables/fcs_keywords.tsv: instruments and software of a run, from de-identified records only."""

from __future__ import annotations

import json

import pandas as pd

from cytotrial.io.deid import deidentify_keywords
from cytotrial.io.provenance import fcs_keywords_table

DIGEST = "0" * 64


def record(tmp_path, sample_id, metadata, keep_serial=False):
    meta = deidentify_keywords(metadata, 3, DIGEST, keep_instrument_serial=keep_serial)
    path = tmp_path / f"{sample_id}.json"
    path.write_text(json.dumps({"sample_id": sample_id, "fcs_version": "3.1", **meta.as_record()}))
    return path


def test_instruments_software_and_versions_are_counted_per_value(tmp_path):
    base = {"$CYT": "Aurora", "$CYTSN": "U1234", "$FIL": "2023-01-05 JD.fcs", "$DATE": "05-JAN-2023"}
    paths = [record(tmp_path, "a", {**base, "CREATOR": "SpectroFlo 3.0.3"}),
             record(tmp_path, "b", {**base, "CREATOR": "SpectroFlo 3.0.3"}),
             record(tmp_path, "c", {**base, "$CYT": "LSRFortessa", "CREATOR": r"C:\Users\jdoe\Diva"})]
    samples = pd.DataFrame({"sample_id": ["a", "b", "c"], "batch": ["run1", "run2", "run1"]})
    table = fcs_keywords_table(paths, samples)
    assert table.to_dict("records") == [
        {"keyword": "$CYT", "value": "Aurora", "files": 2, "batches": "run1, run2"},
        {"keyword": "$CYT", "value": "LSRFortessa", "files": 1, "batches": "run1"},
        {"keyword": "CREATOR", "value": "SpectroFlo 3.0.3", "files": 2, "batches": "run1, run2"},
        {"keyword": "FCS version", "value": "3.1", "files": 3, "batches": "run1, run2"},
    ]  # no serial (not kept), no file name, no date, no user's path


def test_the_serial_appears_only_when_the_config_keeps_it(tmp_path):
    path = record(tmp_path, "a", {"$CYT": "Aurora", "$CYTSN": "U1234"}, keep_serial=True)
    table = fcs_keywords_table([path], pd.DataFrame({"sample_id": ["a"]}))
    assert ("$CYTSN", "U1234", 1, "a") in set(table.itertuples(index=False, name=None))


def test_software_with_a_date_is_not_named():
    meta = deidentify_keywords({"CREATOR": "FlowJo 10.8 05-Jan-2023"}, None, DIGEST)
    assert meta.software is None and "CREATOR" in meta.dropped
