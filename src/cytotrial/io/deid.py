"""De-identification of FCS TEXT keywords: a whitelist of technical keywords, dates become study days.

Only known technical keywords are kept (a whitelist, never a blacklist); calendar dates and clock times never
leave (a sample's time is its study day and its acquisition duration); dropped keywords are reported by name
only. The rules, and how keys are normalised across FCS readers, are in :func:`deidentify_keywords`.

Not covered: identifying free text that is neither a date nor under an identifying keyword, e.g. a patient's
initials typed into a $PnS marker label. The workflow's FCS exports (:mod:`cytotrial.export.events`) carry the
kept keywords an FCS 3.1 file can (:func:`writable_keyword`), plus CYTOTRIAL_STUDY_DAY and CYTOTRIAL_SOURCE_SHA256.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
from flowio.fcs_keywords import FCS_STANDARD_OPTIONAL_KEYWORDS

# FCS 3.1/3.2 standard keywords (without '$') that are neither per-parameter nor numbered.
_STANDARD_NAMES = frozenset("""
    ABRT BEGINANALYSIS BEGINDATA BEGINDATETIME BEGINSTEXT BTIM BYTEORD CARRIERID CARRIERTYPE CELLS COM COMP
    CSMODE CSVBITS CYT CYTSN DATATYPE DATE ENDANALYSIS ENDDATA ENDDATETIME ENDSTEXT ETIM EXP FIL FLOWRATE GATE
    GATING INST LAST_MODIFIED LAST_MODIFIER LOCATIONID LOST MODE NEXTDATA OP ORIGINALITY PAR PLATEID PLATENAME
    PROJ SMNO SPILLOVER SRC SYS TIMESTEP TOT TR UNICODE UNSTAINEDCENTERS UNSTAINEDINFO VOL WELLID
""".split())
_PARAMETER_SUFFIXES = "N|S|R|B|E|G|V|L|O|T|F|P|D|DET|TAG|TYPE|FEATURE|ANALYTE|CALIBRATION|DATATYPE"
_STANDARD_PATTERN = re.compile(rf"P\d+(?:{_PARAMETER_SUFFIXES})|DFC\d+TO\d+|CSV\d+FLAG|G\d+[EFNPRSTV]|R\d+[IW]"
                               r"|PKN?\d+")

TECHNICAL_KEYWORDS = frozenset({
    # data layout (FCS 3.1 required)
    "$BEGINANALYSIS", "$ENDANALYSIS", "$BEGINDATA", "$ENDDATA", "$BEGINSTEXT", "$ENDSTEXT", "$BYTEORD",
    "$DATATYPE", "$MODE", "$NEXTDATA", "$PAR", "$TOT",
    # acquisition and compensation (FCS 3.1/3.2 optional)
    "$ABRT", "$LOST", "$TIMESTEP", "$TR", "$VOL", "$CYT", "$SPILLOVER", "$COMP", "$UNICODE", "$CSMODE",
    "$CSVBITS", "$ORIGINALITY", "$FLOWRATE",
    # BD FACSDiva / Cytek SpectroFlo acquisition settings
    "SPILL", "APPLY COMPENSATION", "FSC ASF", "THRESHOLD", "WINDOW EXTENSION", "AUTOBS", "CST SETUP STATUS",
    "CST PERFORMANCE EXPIRED", "CHARSET",
})
"""Kept keywords with fixed names. BD/Cytek date or name keys ("CST SETUP DATE", "CST BASELINE DATE",
"CYTOMETER CONFIG NAME", "USERSETTINGNAME") are deliberately absent; so are Beckman "@" keys, Attune/Accuri
"#" keys and Miltenyi keys: none of them is needed to read or analyse the events."""

TECHNICAL_PATTERNS = (
    re.compile(rf"\$P\d+(?:{_PARAMETER_SUFFIXES})"),  # $PnN $PnS $PnR ... $PnCALIBRATION $PnDATATYPE
    re.compile(r"\$DFC\d+TO\d+"),  # FCS 2.0 compensation
    re.compile(r"\$CSV\d+FLAG"),  # cell-subset flags
    re.compile(r"LASER\d+(?:NAME|DELAY|ASF)"),  # BD / Cytek laser settings
    re.compile(r"P\d+(?:DISPLAY|BS|MS)"),  # BD display scale, CST bin sizes
)

IDENTIFYING_KEYWORDS = frozenset({
    "$SRC", "$SMNO", "$FIL", "$OP", "$EXP", "$INST", "$COM", "$PROJ", "$DATE", "$BTIM", "$ETIM", "$CELLS",
    "$BEGINDATETIME", "$ENDDATETIME", "$LAST_MODIFIED", "$LAST_MODIFIER", "$PLATEID", "$PLATENAME", "$WELLID",
    "$CARRIERID", "$LOCATIONID", "$SYS", "$GATING", "$UNSTAINEDINFO", "$CYTSN", "CREATOR", "TUBE NAME",
    "EXPERIMENT NAME", "INSTADDRESS", "RUNNUMBER", "FILENAME", "@LOCATION", "CYTEXPERTFIL",
})
"""Never accepted in ``extra_whitelist`` ($CYTSN has its own switch)."""
_IDENTIFYING_WORDS = re.compile(r"PATIENT|SUBJECT|MRN|SAMPLE ?ID|CASE|USER|OPERATOR|GUID|DATE|BIRTH|DOB")

DATE_EXEMPT_KEYWORDS = frozenset({"$SPILLOVER", "SPILL", "$COMP"})
_DATE_EXEMPT_PATTERN = re.compile(r"\$P\d+N|\$DFC\d+TO\d+")

_MONTH = r"(?:JAN|FEB|MAR|APR|MAY|JUNE?|JULY?|AUG|SEPT?|OCT|NOV|DEC)[A-Z]*\.?"
_DATE_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"(?<!\d)\d{4}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)",  # 2023-01-05, 2023/1/5
    rf"(?<!\d)\d{{1,2}}[-/ .]?{_MONTH}[-/ .,]*\d{{2,4}}(?!\d)",  # 05-JAN-2023, 5 Jan 2023, 05JAN23
    rf"(?<![A-Z]){_MONTH}[-/ ]?\d{{1,2}}(?:st|nd|rd|th)?,?[-/ ]\d{{4}}(?!\d)",  # Jan 5, 2023
    rf"(?<!\d)\d{{4}}[-/ ]{_MONTH}[-/ ]\d{{1,2}}(?!\d)",  # 2023-Jan-05
    r"(?<!\d)\d{1,2}[-/]\d{1,2}[-/]\d{4}(?!\d)",  # 01/05/2023, 5-1-2023
    r"(?<![A-Z\d])\d{1,2}[-/]\d{1,2}[-/]\d{2}(?!\d)",  # 01/05/23, but not a marker label "CD3/14/19"
    r"(?<![\d.])\d{1,2}\.\d{1,2}\.\d{4}(?![\d.])",  # 05.01.2023
))
_COMPACT_DATE = re.compile(r"(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)")
_NUMERIC = re.compile(r"[\s\d.,eE+-]*")
_TIME = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:([.:])(\d+))?)?\s*")
_SHA256 = re.compile(r"[0-9a-f]{64}")

STUDY_DAY_KEYWORD = "CYTOTRIAL_STUDY_DAY"
SOURCE_SHA256_KEYWORD = "CYTOTRIAL_SOURCE_SHA256"


@dataclass(frozen=True)
class DeidentifiedMetadata:
    """What is left of an FCS file's TEXT segment after de-identification.

    Attributes
    ----------
    keywords
        Kept technical keywords, normalised names (e.g. "$CYT", "$P5N", "LASER1NAME") to values.
    study_day
        Day of the sample relative to the study's day 0 (None when unknown); replaces calendar dates.
    acquisition_duration_s
        Seconds from $BTIM to $ETIM (or $BEGINDATETIME to $ENDDATETIME); None when not parseable.
    source_sha256
        SHA-256 (lower-case hex) of the original file's bytes, to tie the copy to its source.
    dropped
        Sorted normalised NAMES of the dropped keywords; their values are not kept anywhere.
    software
        The acquisition software as CREATOR names it (e.g. "BD FACSDiva Software Version 9.0"), None when absent
        or when the value holds a date, a path or an address (CREATOR itself stays dropped from the keywords).
    """

    keywords: dict[str, str]
    study_day: int | None
    acquisition_duration_s: float | None
    source_sha256: str
    dropped: list[str] = field(default_factory=list)
    software: str | None = None

    def as_record(self) -> dict:
        """A JSON-ready dict (for provenance files)."""
        return {"study_day": self.study_day, "acquisition_duration_s": self.acquisition_duration_s,
                "source_sha256": self.source_sha256, "keywords": dict(self.keywords), "dropped": list(self.dropped),
                "software": self.software}


def normalise_key(key: str) -> str:
    """Upper-case keyword name, with '$' exactly when it is an FCS standard keyword.

    ``'p5n'``, ``'$P5N'`` and ``'$p5n'`` give "$P5N"; ``'patient id'`` gives "PATIENT ID"; ``'$GUID'`` gives
    "GUID" (not an FCS standard keyword).
    """
    name = key.strip().lstrip("$").upper()
    standard = name in _STANDARD_NAMES or _STANDARD_PATTERN.fullmatch(name) is not None
    return f"${name}" if standard else name


def _matches_any(key: str, names: Iterable[str]) -> bool:
    return any(fnmatchcase(key, name) for name in names)


def _identifying(key: str) -> bool:
    return key in IDENTIFYING_KEYWORDS or _IDENTIFYING_WORDS.search(key) is not None


def is_technical(key: str, keep_instrument_serial: bool = False, extra_whitelist: Iterable[str] = ()) -> bool:
    """Whether a normalised keyword name is on the whitelist.

    A key that only ``extra_whitelist`` admits (e.g. through a wildcard) is still refused when it is
    identifying by name (see :func:`check_extra_whitelist`).
    """
    if key in TECHNICAL_KEYWORDS or any(p.fullmatch(key) for p in TECHNICAL_PATTERNS):
        return True
    if key == "$CYTSN":
        return keep_instrument_serial
    return _matches_any(key, extra_whitelist) and not _identifying(key)


def check_extra_whitelist(extra_whitelist: Iterable[str] | None) -> frozenset[str]:
    """Normalise config-supplied keyword names and refuse identifying ones.

    Raises
    ------
    ValueError
        Naming every entry that is a standard identifying keyword or speaks of patients, samples, users,
        dates etc.
    """
    names = frozenset(normalise_key(n) for n in (extra_whitelist or ()))
    refused = sorted(n for n in names if _identifying(n) or any(fnmatchcase(i, n) for i in IDENTIFYING_KEYWORDS))
    if refused:
        raise ValueError(f"extra_whitelist may only add technical FCS keywords; {refused} can identify a patient, "
                         "site or date and are always removed. Remove them from the config "
                         "(the instrument serial $CYTSN is kept with keep_instrument_serial: true).")
    return names


def contains_date(value: str) -> bool:
    """Whether a keyword value contains something that reads as a calendar date.

    A value made only of numbers (e.g. "20230105" as an event count) is not read as a compact yyyymmdd date;
    inside free text (a file name "20230105_AB.fcs") it is.
    """
    if any(p.search(value) for p in _DATE_PATTERNS):
        return True
    return not _NUMERIC.fullmatch(value) and _COMPACT_DATE.search(value) is not None


def _date_exempt(key: str) -> bool:
    return key in DATE_EXEMPT_KEYWORDS or _DATE_EXEMPT_PATTERN.fullmatch(key) is not None


def parse_fcs_time(value: str | None) -> float | None:
    """Seconds since midnight of an FCS clock time, or None.

    Accepts hh:mm, hh:mm:ss, hh:mm:ss.cc (FCS 3.1, fraction of a second) and hh:mm:ss:tt (FCS 2.0/3.0,
    tt in 1/60 s).
    """
    match = _TIME.fullmatch(value or "")
    if match is None:
        return None
    hours, minutes, seconds, separator, fraction = match.groups()
    seconds = int(seconds or 0)
    if int(hours) > 23 or int(minutes) > 59 or seconds > 59:
        return None
    extra = 0.0
    if separator == ".":
        extra = float(f"0.{fraction}")
    elif separator == ":":
        if int(fraction) >= 60:
            return None
        extra = int(fraction) / 60
    return 3600 * int(hours) + 60 * int(minutes) + seconds + extra


def _parse_datetime(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.strip()) if value else None
    except ValueError:
        return None


def acquisition_duration(begin: str | None, end: str | None, begin_datetime: str | None = None,
                         end_datetime: str | None = None) -> float | None:
    """Seconds of acquisition from $BTIM/$ETIM, else from FCS 3.2 $BEGINDATETIME/$ENDDATETIME.

    An $ETIM earlier than $BTIM is read as an acquisition running past midnight. None when neither pair
    parses.
    """
    start, stop = parse_fcs_time(begin), parse_fcs_time(end)
    if start is not None and stop is not None:
        return round(stop - start + (86400 if stop < start else 0), 6)
    start_dt, stop_dt = _parse_datetime(begin_datetime), _parse_datetime(end_datetime)
    try:
        seconds = (stop_dt - start_dt).total_seconds() if start_dt and stop_dt else None
    except TypeError:  # one has a time zone, the other not
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def deidentify_keywords(metadata: Mapping[str, str], study_day: int | None, source_sha256: str, *,
                        keep_instrument_serial: bool = False,
                        extra_whitelist: Iterable[str] | None = None) -> DeidentifiedMetadata:
    """Keep only technical keywords of an FCS TEXT segment (see the module docstring for the rules).

    Parameters
    ----------
    metadata
        Keywords as read, e.g. flowkit's ``Sample.get_metadata()``; any case, with or without '$'.
    study_day
        The sample's study day (replaces the calendar date), or None.
    source_sha256
        SHA-256 hex digest of the original file.
    keep_instrument_serial
        Keep $CYTSN (identifies the site, not the patient).
    extra_whitelist
        Further technical keyword names from the config (``*`` wildcards allowed).

    Raises
    ------
    ValueError
        For a malformed digest, a non-integer study day or an identifying name in ``extra_whitelist``.

    Rules
    -----
    * Whitelist, never blacklist: a keyword is kept only when it is a known *technical* keyword (data layout,
      per-parameter description, compensation, acquisition settings). Every other keyword, including any the
      code has never seen, is dropped. Dropped keywords are reported by NAME only, never by value.
    * Calendar dates and clock times never leave: $DATE, $BTIM, $ETIM, $BEGINDATETIME, $ENDDATETIME,
      $LAST_MODIFIED are not whitelisted; the sample's position in time is the caller's ``study_day`` and the
      acquisition duration in seconds (computed from $BTIM/$ETIM before they are dropped).
    * Date rule: even a whitelisted keyword is dropped when its value contains something that reads as a
      calendar date (2023-01-05, 2023/1/5, 05-JAN-2023, 5 Jan 2023, Jan 5, 2023, 01/05/2023, 5.1.2023, and in
      free text also 20230105). Exempt are the keywords whose values are numbers and channel names by
      construction and which the copy cannot be read without: $PnN and the spillover matrices ($SPILLOVER,
      SPILL, $COMP, $DFCnTOm).
    * $CYTSN (instrument serial number) names no patient but identifies the site: dropped unless
      ``keep_instrument_serial=True``.
    * ``extra_whitelist`` (from the config) may add technical keywords (exact names, ``*`` wildcards); it is
      refused for the standard identifying keywords and for names that speak of patients, subjects, samples,
      cases, users, operators, GUIDs or dates.

    Keys are normalised as FCS readers disagree: flowio/flowkit give ``{'cyt': ..., 'p5n': ..., 'patient id':
    ...}`` (lower case, every '$' removed), other readers ``{'$CYT': ...}``. Output keys are upper case; FCS
    standard keywords carry '$' ("$CYT", "$P5N"), others do not ("LASER1NAME", "PATIENT ID"). A non-standard
    key written with a '$' (Beckman "$GUID") is reported without it, as flowio would give it.
    """
    digest = str(source_sha256).strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"source_sha256 must be 64 hexadecimal characters, got {len(digest)} characters")
    if study_day is not None and (isinstance(study_day, bool) or not isinstance(study_day, (int, np.integer))):
        raise ValueError(f"study_day must be an integer or None, got {type(study_day).__name__}")
    extra = check_extra_whitelist(extra_whitelist)
    normalised: dict[str, str] = {}
    for key, value in metadata.items():
        normalised.setdefault(normalise_key(str(key)), "" if value is None else str(value))
    kept, dropped = {}, []
    for key, value in normalised.items():
        technical = is_technical(key, keep_instrument_serial, extra)
        if technical and (_date_exempt(key) or not contains_date(value)):
            kept[key] = value
        else:
            dropped.append(key)
    duration = acquisition_duration(normalised.get("$BTIM"), normalised.get("$ETIM"),
                                    normalised.get("$BEGINDATETIME"), normalised.get("$ENDDATETIME"))
    return DeidentifiedMetadata(keywords=kept, study_day=None if study_day is None else int(study_day),
                                acquisition_duration_s=duration, source_sha256=digest, dropped=sorted(dropped),
                                software=software_name(normalised.get("CREATOR")))


def software_name(creator: str | None) -> str | None:
    """The CREATOR value when it names software only: no date, path, e-mail address, at most 100 characters."""
    value = (creator or "").strip()
    if not value or len(value) > 100 or contains_date(value) or re.search(r"[/\\@:]", value):
        return None
    return value


# Keywords the writer (flowio.create_fcs) sets itself from the events: never copied from the source.
_LAYOUT_KEYWORDS = frozenset({"$BEGINANALYSIS", "$ENDANALYSIS", "$BEGINDATA", "$ENDDATA", "$BEGINSTEXT",
                              "$ENDSTEXT", "$BYTEORD", "$DATATYPE", "$MODE", "$NEXTDATA", "$PAR", "$TOT",
                              "$UNICODE", "$CSMODE", "$CSVBITS", "$ORIGINALITY"})
_LAYOUT_PATTERN = re.compile(r"\$P\d+(?:B|E|G|R|N|S|DATATYPE)|\$CSV\d+FLAG")
_FLOWIO_PARAMETER = re.compile(r"\$P\d+(?:[DFLOPTV]|CALIBRATION)")


def writable_keyword(key: str) -> bool:
    """Whether flowio writes the keyword under its own name (it strips the '$' of standard keywords it does not
    know, e.g. FCS 3.2 $PnTYPE or FCS 3.0 $COMP, which would make them look like vendor keywords)."""
    if key in _LAYOUT_KEYWORDS or _LAYOUT_PATTERN.fullmatch(key):
        return False
    return not key.startswith("$") or key[1:].lower() in FCS_STANDARD_OPTIONAL_KEYWORDS or bool(
        _FLOWIO_PARAMETER.fullmatch(key))
