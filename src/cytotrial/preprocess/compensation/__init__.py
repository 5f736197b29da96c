"""Compensation: undo fluorescence spillover.

Sources of the spillover matrix: the FCS file's own $SPILLOVER/$SPILL keyword (:mod:`.keywords`).
An external matrix file, CSV/TSV as FlowJo exports it or FCS spill text (:mod:`.external`).
Single-stain controls, AutoSpill-style iterative robust regression (:mod:`.autospill`).
"""

from .autospill import (SpilloverEstimate, controls_from_manifest, spillover_from_controls, to_flowkit_matrix,
                        write_spillover_report)
from .external import read_matrix_file
from .keywords import CompensationError, check_invertible, parse_spill_text, spillover_from_keywords
from .select import SOURCES, compensation_matrix

__all__ = ["CompensationError", "check_invertible", "parse_spill_text", "spillover_from_keywords"]
__all__ += ["SpilloverEstimate", "controls_from_manifest", "read_matrix_file", "spillover_from_controls",
            "to_flowkit_matrix", "write_spillover_report"]
__all__ += ["SOURCES", "compensation_matrix"]
