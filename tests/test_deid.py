"""De-identification of FCS keywords: whitelist semantics, date rule, the keywords of simulated files (the
exported FCS files themselves are checked in test_export.py)."""

from __future__ import annotations

import pytest

from cytotrial.io.deid import acquisition_duration, contains_date, deidentify_keywords, normalise_key
from cytotrial.io.fcs import read_fcs, sha256_of

SHA = "ab" * 32

# Identifying keywords the simulator writes (flowio names: lower case, no '$'), and their normalised names.
SIMULATED_IDENTIFYING = {
    "src": "$SRC", "fil": "$FIL", "op": "$OP", "inst": "$INST", "exp": "$EXP", "proj": "$PROJ", "smno": "$SMNO",
    "com": "$COM", "date": "$DATE", "btim": "$BTIM", "etim": "$ETIM", "cytsn": "$CYTSN", "creator": "CREATOR",
    "patient id": "PATIENT ID", "sample id": "SAMPLE ID", "case number": "CASE NUMBER",
    "experiment name": "EXPERIMENT NAME", "tube name": "TUBE NAME",
}


@pytest.fixture(scope="module")
def deidentified_copies(small_trial):
    """Every simulated file, its flowkit Sample and what de-identification keeps of its keywords."""
    copies = []
    for row in small_trial["samples"].itertuples():
        source = read_fcs(row.fcs)
        digest = sha256_of(row.fcs)
        meta = deidentify_keywords(source.get_metadata(), int(row.study_day), digest)
        copies.append({"row": row, "source": source, "sha256": digest, "meta": meta})
    return copies


def test_simulated_files_lose_every_identifying_value(deidentified_copies):
    for copy in deidentified_copies:
        meta = copy["meta"]
        assert set(SIMULATED_IDENTIFYING.values()) <= set(meta.dropped)
        original = copy["source"].get_metadata()
        secrets = {value for key, value in original.items() if normalise_key(key) in meta.dropped}
        assert len(secrets) >= len(SIMULATED_IDENTIFYING)
        for secret in secrets:
            assert secret not in meta.keywords.values(), secret
            if len(secret) >= 5:  # a 4-digit case number may occur by chance in a technical value
                assert all(secret not in value for value in meta.keywords.values()), secret
        assert not set(meta.dropped) & set(meta.keywords)


def test_simulated_files_keep_technical_keywords(deidentified_copies):
    for copy in deidentified_copies:
        original, kept = copy["source"].get_metadata(), copy["meta"].keywords
        assert kept["$SPILLOVER"] == original["spillover"]
        assert kept["$CYT"] == "LSRFortessa X-20" and kept["$TIMESTEP"] == original["timestep"]
        assert kept["$P5N"] == "BUV395-A" and kept["$P5S"] == "CD45" and kept["$P5V"] == "510"
        assert kept["$P1R"] == "262144" and kept["$PAR"] == original["par"]
        assert copy["meta"].study_day == copy["row"].study_day
        assert copy["meta"].source_sha256 == copy["sha256"] == sha256_of(copy["row"].fcs)


def test_duration_of_simulated_acquisition(deidentified_copies):
    # The simulator sets $ETIM = $BTIM + int(Time of the last event in seconds) + 1.
    for copy in deidentified_copies:
        source = copy["source"]
        last_second = float(source.get_events(source="raw")[-1, source.time_index])
        assert copy["meta"].acquisition_duration_s == pytest.approx(int(last_second) + 1)


# Metadata dicts mimicking vendor exports: (technical keywords that must be kept, identifying ones that must go).
VENDOR_EXPORTS = {
    "BD FACSDiva (flowio keys)": (
        {"cyt": "LSRFortessa", "p1n": "FSC-A", "p1v": "350", "p5n": "FITC-A", "p5s": "CD3", "p5display": "LOG",
         "spill": "2,FITC-A,PE-A,1,0.2,0.01,1", "laser1name": "Blue", "laser1delay": "0.00", "laser1asf": "1.11",
         "fsc asf": "0.78", "threshold": "FSC,5000", "window extension": "10.00", "apply compensation": "TRUE",
         "cst setup status": "SUCCESS", "autobs": "TRUE"},
        {"cytsn": "H47100125", "creator": "BD FACSDiva Software Version 9.0.1", "date": "14-MAR-2023",
         "btim": "10:02:11", "etim": "10:05:47", "src": "Doe Jane", "fil": "Specimen_001_Tube_003.fcs",
         "op": "jsmith", "inst": "St Elsewhere Flow Core", "export user name": "jsmith",
         "export time": "14-MAR-2023-10:20:51", "guid": "6f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
         "experiment name": "ITP-007 visit 2", "specimen name": "ITP-007 W4", "tube name": "Treg panel",
         "patient id": "MRN4471123", "sample id": "S-2023-0456", "case number": "23-1187", "well id": "A1",
         "plate name": "Plate_14MAR", "cst setup date": "03/14/2023 08:12:44 AM", "cst baseline date": "2022-11-02",
         "cst beads lot id": "94510", "cytometer config name": "Fortessa 5L (Smith lab)",
         "cytometer config create date": "11/02/2022 10:01:12 AM"}),
    "Beckman CytoFLEX/Kaluza ('$' keys)": (
        {"$CYT": "CytoFLEX LX", "$P1N": "FSC-A", "$P1R": "8388608", "$P3N": "FL1-A", "$P3S": "CD4 FITC",
         "$VOL": "37.95", "$TIMESTEP": "0.1", "$SPILLOVER": "1,FL1-A,1"},
        {"$CYTSN": "AW39183", "$DATE": "14-Mar-2023", "$BTIM": "09:12:03", "$ETIM": "09:14:03",
         "$FIL": "01-Tube-A1.fcs", "$INST": "General Hospital", "$OP": "Admin", "@SAMPLEID1": "MRN5531",
         "@SAMPLEID2": "DOE JANE", "@SAMPLEID3": "1962", "@LOCATION": "Haematology Lab 3",
         "@FILEGUID": "9b2c", "@Y2KDATE": "14-MAR-2023", "@SETTINGSFILE": "C:\\Users\\jdoe\\Treg.xml",
         "@SETTINGSFILEDATETIME": "2023-03-01 08:00", "@CYTOMETERID": "BX1183", "@BUILDNUMBER": "2.4.0.28",
         "$INSTADDRESS": "1 Hospital Rd", "$RUNNUMBER": "17", "CYTEXPERTFIL": "ITP007_D0.xit",
         "$GUID": "c0ffee00", "TBNM": "ITP007 D0"}),
    "Cytek Aurora (SpectroFlo)": (
        {"$CYT": "Aurora", "$P1N": "UV1-A", "$P1TYPE": "Raw_Fluorescence", "$P1L": "355", "$P1V": "1000",
         "CHARSET": "utf-8", "LASER1NAME": "UV", "WINDOW EXTENSION": "3", "FSC ASF": "1.2", "THRESHOLD": "FSC,50000"},
        {"$CYTSN": "V0123", "CREATOR": "SpectroFlo 3.0.3", "GROUPNAME": "Patient ITP-007",
         "TUBENAME": "D0 Treg", "USERSETTINGNAME": "Jane lab settings", "GUID": "a1b2c3",
         "ORIGINALGUID": "d4e5f6", "$DATE": "14-Mar-2023", "$BEGINDATETIME": "2023-03-14T10:02:11+01:00",
         "$ENDDATETIME": "2023-03-14T10:04:11+01:00", "$OP": "jdoe", "$SRC": "ITP-007",
         "EXPERIMENT NAME": "ITP trial", "SAMPLE ID": "ITP-007-D0"}),
    "Attune NxT": (
        {"$CYT": "Attune NxT Acoustic Focusing Cytometer", "$P1N": "FSC-A", "$P1V": "380", "$TIMESTEP": "0.001",
         "$ORIGINALITY": "Original", "$SPILLOVER": "1,BL1-A,1"},
        {"$CYTSN": "2AFC41137", "$DATE": "14-Mar-2023", "$BTIM": "10:02:11", "$ETIM": "10:03:12",
         "$FIL": "Exp_ITP007_D0_A1.fcs", "$OP": "jdoe", "$SRC": "ITP007 D0", "$WELLID": "A1", "$PLATEID": "P123",
         "$PLATENAME": "Plate 1", "$COM": "patient on steroids", "$LAST_MODIFIED": "14-MAR-2023 10:05:02.00",
         "$LAST_MODIFIER": "jdoe", "#ACQUISITIONTIMEMILLI": "61000"}),
    "Accuri C6 (FCS 3.0)": (
        {"$CYT": "C6 Flow Cytometer", "$P1N": "FSC-A", "$P1R": "16777215", "$P1E": "0,0"},
        {"$DATE": "14-Mar-2023", "$BTIM": "10:02:11:30", "$ETIM": "10:03:41:45", "$FIL": "ITP007.c6",
         "$SMNO": "A01", "$SRC": "Jane Doe", "$CELLS": "PBMC ITP007", "#SAMPLE": "ITP007 D0"}),
    "Miltenyi MACSQuant": (
        {"$CYT": "MACSQuant Analyzer 10", "$P1N": "FSC-A", "$P2N": "V1-A", "$P2S": "CD45 VioBlue"},
        {"$SRC": "ITP007", "$SMNO": "ITP007-W4", "$OP": "jdoe", "$DATE": "2023-03-14", "$BTIM": "10:02:11.50",
         "$ETIM": "10:04:12.75", "PATIENT ID": "MRN99812", "SAMPLE ID": "W4"}),
}
EXPECTED_DURATION = {"BD FACSDiva (flowio keys)": 216.0, "Beckman CytoFLEX/Kaluza ('$' keys)": 120.0,
                     "Cytek Aurora (SpectroFlo)": 120.0, "Attune NxT": 61.0, "Accuri C6 (FCS 3.0)": 90.25,
                     "Miltenyi MACSQuant": 121.25}


@pytest.mark.parametrize("vendor", sorted(VENDOR_EXPORTS))
def test_vendor_exports_keep_technical_and_drop_identifying(vendor):
    technical, identifying = VENDOR_EXPORTS[vendor]
    meta = deidentify_keywords({**technical, **identifying}, study_day=28, source_sha256=SHA)
    assert meta.keywords == {normalise_key(k): v for k, v in technical.items()}
    assert meta.dropped == sorted(normalise_key(k) for k in identifying)
    for secret in identifying.values():
        assert all(secret not in value for value in meta.keywords.values()), secret
    assert meta.acquisition_duration_s == pytest.approx(EXPECTED_DURATION[vendor])
    assert meta.study_day == 28 and meta.source_sha256 == SHA


def test_instrument_serial_kept_only_on_request():
    metadata = {"cyt": "LSRFortessa", "cytsn": "R66020000017"}
    assert "$CYTSN" in deidentify_keywords(metadata, None, SHA).dropped
    kept = deidentify_keywords(metadata, None, SHA, keep_instrument_serial=True)
    assert kept.keywords == {"$CYT": "LSRFortessa", "$CYTSN": "R66020000017"} and kept.dropped == []


def test_date_valued_whitelisted_keywords_are_dropped():
    metadata = {"$P5N": "FITC-A", "$P5S": "CD3 lot 2023-03-14", "THRESHOLD": "FSC,5000 set 14-MAR-2023",
                "LASER1NAME": "Blue 03/14/2023", "FSC ASF": "20230314_run", "$TOT": "20230314",
                "$CYT": "LSRFortessa", "$SPILLOVER": "2,FITC-A,PE-A,1,0.2,0.01,1"}
    meta = deidentify_keywords(metadata, 0, SHA)
    assert meta.dropped == ["$P5S", "FSC ASF", "LASER1NAME", "THRESHOLD"]
    assert meta.keywords == {"$P5N": "FITC-A", "$TOT": "20230314", "$CYT": "LSRFortessa",
                             "$SPILLOVER": "2,FITC-A,PE-A,1,0.2,0.01,1"}


@pytest.mark.parametrize("value", ["2023-03-14", "2023/3/4", "14-MAR-2023", "14-Mar-23", "5 January 2023",
                                   "14MAR2023", "Mar 14, 2023", "2023-Mar-14", "03/14/2023", "3-14-23",
                                   "14.03.2023", "run 2023-03-14T10:02:11", "file_20230314.fcs", "drawn 3/14/19"])
def test_contains_date_finds_dates(value):
    assert contains_date(value)


@pytest.mark.parametrize("value", ["FSC-A", "PE-Cy5.5-A", "262144", "1,2,3,4", "0,0", "0.0152,0,1,-0.003",
                                   "20230314", "LSRFortessa X-20", "Live/Dead", "FSC,5000", "09:37:00",
                                   "BD FACSDiva Software Version 9.0.1", "10.0.19041", "HLA-DR", "CD45RA",
                                   "CD3/14/19"])
def test_contains_date_ignores_technical_values(value):
    assert not contains_date(value)


def test_unknown_keys_are_dropped():
    metadata = {"$CYT": "LSRFortessa", "FOO": "bar", "$NEWKEY": "1", "MYLAB QC": "ok", "@P1GAIN": "2",
                "#FLUIDICS": "slow", "p1n": "FSC-A"}
    meta = deidentify_keywords(metadata, 14, SHA)
    assert meta.keywords == {"$CYT": "LSRFortessa", "$P1N": "FSC-A"}
    assert meta.dropped == ["#FLUIDICS", "@P1GAIN", "FOO", "MYLAB QC", "NEWKEY"]


def test_extra_whitelist_adds_technical_keys_but_never_identifying_ones():
    metadata = {"MYLAB QC": "ok", "@P1GAIN": "2", "SAMPLE FLOW": "low", "SAMPLE ID": "MRN1", "$SRC": "Doe"}
    meta = deidentify_keywords(metadata, 14, SHA, extra_whitelist={"mylab qc", "@P*GAIN", "SAMPLE*"})
    assert meta.keywords == {"MYLAB QC": "ok", "@P1GAIN": "2", "SAMPLE FLOW": "low"}
    assert meta.dropped == ["$SRC", "SAMPLE ID"]
    for refused in ({"PATIENT ID"}, {"$SRC"}, {"src"}, {"@SAMPLEID*"}, {"*"}, {"$CYTSN"}, {"CST SETUP DATE"}):
        with pytest.raises(ValueError, match="extra_whitelist"):
            deidentify_keywords(metadata, 14, SHA, extra_whitelist=refused)


@pytest.mark.parametrize("key, expected", [("p5n", "$P5N"), ("$P5N", "$P5N"), ("$p5n", "$P5N"),
                                           ("spillover", "$SPILLOVER"), ("patient id", "PATIENT ID"),
                                           ("$GUID", "GUID"), ("laser1name", "LASER1NAME"), ("p5display", "P5DISPLAY")])
def test_normalise_key(key, expected):
    assert normalise_key(key) == expected


@pytest.mark.parametrize("begin, end, expected", [
    ("10:00:00", "10:01:30", 90.0), ("10:00:00.25", "10:00:01.75", 1.5), ("10:00:00:30", "10:00:01:15", 0.75),
    ("23:59:50", "00:00:10", 20.0), ("10h00", "10:01:00", None), (None, "10:01:00", None),
    ("10:00:00:75", "10:00:01", None)])
def test_acquisition_duration(begin, end, expected):
    assert acquisition_duration(begin, end) == (None if expected is None else pytest.approx(expected))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="64 hexadecimal"):
        deidentify_keywords({}, 0, "not-a-digest")
    with pytest.raises(ValueError, match="study_day"):
        deidentify_keywords({}, True, SHA)
