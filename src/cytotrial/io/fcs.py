"""Read FCS files into flowkit Samples, tolerating known instrument quirks, with one clear error per bad file.

The HEADER, TEXT and DATA segments are parsed here (``fcs_segments``, ``fcs_layout``, ``fcs_events``)
rather than by flowio, so that every size is checked against the file before anything is allocated and
every problem becomes one :class:`FcsReadError` naming the file. The result is handed to flowkit as a
``flowio.FlowData``, so callers get an ordinary ``flowkit.Sample``. :class:`FcsEventBlocks` gives the same
events block by block (the preprocessing reads files that way, never holding a whole float64 matrix).

Tolerated quirks (each recorded as a note, see :func:`read_fcs_with_notes`): several data sets
(the first FCS 3.x one is read), HEADER and TEXT DATA offsets that disagree, an end offset one byte
too far, repeated $PnN (renamed ``name_2``...), missing $PnN/$PnS/$TOT/$MODE, integer bit masks from
$PnB/$PnR, odd $PnB such as 10 bits stored in 16, empty keyword values, $PnE on float data, bad $PnG or
$TIMESTEP values, supplemental TEXT, both byte orders and FCS 3.2 $PnDATATYPE.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import flowio
import flowkit as fk
import numpy as np

from .fcs_events import CHUNK_ROWS, iter_scaled_events, read_raw_events, scale_events
from .fcs_layout import Layout, build_layout
from .fcs_segments import HEADER_BYTES, FcsFormatError, choose_data_set, read_data_sets

log = logging.getLogger(__name__)


class FcsReadError(ValueError):
    """An FCS file is missing, truncated or not FCS at all."""


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _DecodedFlowData(flowio.FlowData):
    """A ``flowio.FlowData`` filled from our own parser, so that ``flowkit.Sample`` accepts it.

    ``FlowData.__init__`` is deliberately not called (it would parse the file again with flowio).
    """

    def __init__(self, name: str, layout: Layout, raw: np.ndarray):  # noqa: D107 - see class docstring
        self.name = name
        self.version = layout.version
        self.text = layout.keywords
        self.analysis = {}
        self.event_count = layout.event_count
        self.channel_count = len(layout.channels)
        self.data_type = layout.keywords.get("datatype", "").strip().upper()
        self.null_channels = []
        self.channels = {c.number: {"pnn": c.name, "pns": c.marker, "pne": (c.decades, c.log0), "png": c.gain,
                                    "pnr": c.range} for c in layout.channels}
        self.pnn_labels = [c.name for c in layout.channels]
        self.pns_labels = [c.marker for c in layout.channels]
        self.pnr_values = [c.range for c in layout.channels]
        self.fluoro_indices, self.scatter_indices, self.time_index = _channel_kinds(self.pnn_labels)
        self.events = raw
        self._layout = layout
        self._scaled = False

    @property
    def notes(self) -> list[str]:
        """Quirks tolerated while decoding and scaling (complete once ``as_array`` has run)."""
        return self._layout.notes

    def as_array(self, preprocess: bool = True) -> np.ndarray:
        """Events x parameters, float64; scaled by $PnE/$PnG/$TIMESTEP when ``preprocess``.

        To spare a copy of a possibly large matrix, scaling happens in place, once: afterwards the
        unscaled values are gone (flowkit asks only once).
        """
        if preprocess and not self._scaled:
            scale_events(self.events, self._layout)
            self._scaled = True
        elif not preprocess and self._scaled:
            raise RuntimeError("the events of this FlowData were already scaled in place")
        return self.events


def _channel_kinds(names: list[str]) -> tuple[list[int], list[int], int | None]:
    """Fluorescence, scatter and time channel indices, by flowio's naming rule."""
    fluoro, scatter, time_index = [], [], None
    for index, name in enumerate(names):
        lowered = name.lower()
        if lowered[:4] in ("fsc-", "ssc-"):
            scatter.append(index)
        elif lowered[:4] != "time":
            fluoro.append(index)
        elif lowered == "time":
            time_index = index
    return fluoro, scatter, time_index


def _check_file(path: Path) -> None:
    """Existence, minimum size and 'FCS' magic, before any parsing."""
    if not path.is_file():
        raise FcsReadError(f"{path}: FCS file not found. Check the 'fcs' column of the sample sheet.")
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise FcsReadError(f"{path}: only {size} bytes, too short to be an FCS file "
                           f"(the HEADER alone is {HEADER_BYTES} bytes). Re-export the file from the acquisition "
                           "software.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not magic.startswith(b"FCS"):
        raise FcsReadError(f"{path}: does not start with 'FCSx.x' (found {magic!r}); it is not an FCS file.")


def _decode(path: Path) -> tuple[_DecodedFlowData, list[str]]:
    """Parse all segments of ``path``; raises FcsFormatError or OSError.

    Returns the decoded data and the notes about the file as a whole (several data sets); notes about
    the chosen data set are in ``flow_data.notes``.
    """
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        data_sets, notes = read_data_sets(handle, file_size)
        layout = build_layout(choose_data_set(data_sets, notes), file_size)
        raw = read_raw_events(handle, layout)
    return _DecodedFlowData(path.name, layout, raw), notes


@contextmanager
def _read_errors_name(path: Path):
    """Turn any failure to parse or read ``path`` into one FcsReadError naming the file."""
    try:
        yield
    except FcsReadError:
        raise
    except FcsFormatError as err:
        raise FcsReadError(f"{path}: cannot be read as FCS: {err}") from None
    except OSError as err:
        raise FcsReadError(f"{path}: cannot be read ({err.strerror or err}). Check that the file is readable "
                           "and the disk is available.") from None
    except Exception as err:  # noqa: BLE001 - last guard: a damaged file must never surface a library traceback
        raise FcsReadError(f"{path}: cannot be read as FCS ({type(err).__name__}: {err}). The file may be "
                           "corrupt; re-export it from the acquisition software.") from None


@dataclass
class FcsEventBlocks:
    """One FCS file's TEXT (as a flowkit Sample describes it) and its events, read block by block.

    For a pipeline that works on blocks of events (compensate, transform, keep float32) without ever holding
    the file's whole float64 matrix. Iterating yields ``(first event index, float64 block)`` of events scaled by
    $PnG/$PnE/$TIMESTEP, the same values as ``read_fcs(path).get_events(source='raw')``; it can be iterated
    more than once. The attributes are those of a flowkit Sample that the compensation and panel code use.
    """

    path: Path
    version: str
    metadata: dict[str, str]
    pnn_labels: list[str]
    pns_labels: list[str]
    fluoro_indices: list[int]
    ranges: list[float]
    event_count: int
    notes: list[str] = field(default_factory=list)
    chunk_rows: int = CHUNK_ROWS
    _layout: Layout | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, chunk_rows: int | None = None) -> "FcsEventBlocks":
        """Parse HEADER and TEXT (FcsReadError naming the file if they are bad); DATA is read on iteration, in
        blocks of ``chunk_rows`` events (None: the module's CHUNK_ROWS)."""
        path = Path(path)
        _check_file(path)
        with _read_errors_name(path), open(path, "rb") as handle:
            file_size = os.fstat(handle.fileno()).st_size
            data_sets, notes = read_data_sets(handle, file_size)
            layout = build_layout(choose_data_set(data_sets, notes), file_size)
        names = [c.name for c in layout.channels]
        notes = notes + layout.notes  # about the file and its TEXT; notes about the DATA come with iteration
        layout.notes = []
        for note in notes:
            log.warning("%s: %s", path, note)
        return cls(path=path, version=layout.version, metadata=layout.keywords, pnn_labels=names,
                   pns_labels=[c.marker for c in layout.channels], fluoro_indices=_channel_kinds(names)[0],
                   ranges=[c.range for c in layout.channels], event_count=layout.event_count,
                   notes=notes, chunk_rows=chunk_rows or CHUNK_ROWS, _layout=layout)

    def get_channel_index(self, label: str) -> int:
        return self.pnn_labels.index(label)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        layout = self._layout
        layout.notes = []  # the notes about the DATA of this pass (the same on every pass)
        with _read_errors_name(self.path), open(self.path, "rb") as handle:
            yield from iter_scaled_events(handle, layout, self.chunk_rows)
        for note in layout.notes:
            if note not in self.notes:
                self.notes.append(note)
                log.warning("%s: %s", self.path, note)


def read_fcs_with_notes(path: str | os.PathLike) -> tuple[fk.Sample, list[str]]:
    """Read an FCS 2.0/3.0/3.1/3.2 file and say which quirks were tolerated.

    Returns
    -------
    sample : flowkit.Sample
        Events scaled by $PnG/$PnE/$TIMESTEP (``get_events(source='raw')``); ``metadata`` holds the TEXT
        keywords, lowercase without '$'; ``sample_id`` is the file name without extension.
    notes : list of str
        One sentence per tolerated quirk (e.g. renamed duplicate channels, masked bits); empty for a clean file.

    Raises
    ------
    FcsReadError
        Naming the file, what is wrong with it and what to do, for a missing, truncated or corrupt file.
    """
    path = Path(path)
    _check_file(path)
    with _read_errors_name(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flow_data, notes = _decode(path)
            sample = fk.Sample(flow_data, sample_id=path.stem, subsample=0)
    return sample, notes + flow_data.notes


def read_fcs(path: str | os.PathLike) -> fk.Sample:
    """Read an FCS 2.0/3.0/3.1/3.2 file into a flowkit Sample (events scaled by $PnG/$PnE/$TIMESTEP).

    Tolerated quirks are logged as warnings; see :func:`read_fcs_with_notes` to get them.

    Raises
    ------
    FcsReadError
        Naming the file and what is wrong with it, for a missing, empty, truncated or non-FCS file.
    """
    sample, notes = read_fcs_with_notes(path)
    for note in notes:
        log.warning("%s: %s", path, note)
    return sample
