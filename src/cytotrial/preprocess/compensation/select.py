"""Choose a sample's spillover matrix from the configured source."""

from __future__ import annotations

import flowkit as fk

from .external import read_matrix_file
from .keywords import CompensationError, spillover_from_keywords

SOURCES = ("file", "matrix", "controls", "none")


def compensation_matrix(sample: fk.Sample, settings: dict, source: str,
                        matrix_path: str | None = None) -> fk.Matrix | None:
    """The spillover matrix to compensate ``sample`` with, or None for no compensation.

    ``sample`` is a flowkit Sample or an ``io.fcs.FcsEventBlocks`` (only its TEXT keywords and channel labels
    are used).

    Parameters
    ----------
    settings
        The config's ``compensation`` section; ``source`` is 'file' (the file's $SPILLOVER/$SPILL), 'matrix'
        (an external CSV/TSV or spill-text file), 'controls' (the matrix estimated from single-stain controls)
        or 'none'.
    source
        The FCS file's name, for messages.
    matrix_path
        The matrix file for 'matrix' and 'controls' (the workflow passes the estimated matrix for 'controls').
    """
    kind = settings.get("source", "file")
    if kind == "file":
        return spillover_from_keywords(sample, source)
    if kind in ("matrix", "controls"):
        if not matrix_path:
            raise CompensationError(f"compensation.source is '{kind}' but no matrix file was given; set "
                                    f"compensation.{'matrix' if kind == 'matrix' else 'controls'} in the config.")
        detectors = [sample.pnn_labels[i] for i in sample.fluoro_indices]
        stains = [sample.pns_labels[i] for i in sample.fluoro_indices]
        return read_matrix_file(matrix_path, detectors, stains)
    if kind == "none":
        return None
    raise CompensationError(f"compensation.source must be one of {list(SOURCES)}, not {kind!r}")
