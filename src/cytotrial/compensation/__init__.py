"""Compensation: undo fluorescence spillover.

Sources of the spillover matrix: the FCS file's own $SPILLOVER/$SPILL keyword (:mod:`.keywords`).
"""

from .keywords import CompensationError, check_invertible, parse_spill_text, spillover_from_keywords

__all__ = ["CompensationError", "check_invertible", "parse_spill_text", "spillover_from_keywords"]
