"""Platelet response of each patient (IWG 2009: CR, R, NR, confirmation, loss, rescue therapy, bleeding,
corticosteroid dependence).

``load_platelets`` reads and checks a platelet table; ``derive_responses`` gives one row per patient,
``annotate_counts`` one row per count (for swimmer plots), ``evaluate_responses`` both at once. The rules are in
the docstring of :mod:`cytotrial.response.iwg`; the thresholds in :class:`ResponseCriteria`.
"""

from .iwg import (
    ANNOTATION_COLUMNS,
    CORTICOSTEROID_DEPENDENT,
    RESPONSE_AFTER_RESCUE,
    RESPONSE_COLUMNS,
    BleedingNotRecordedWarning,
    MissingBaselineError,
    annotate_counts,
    derive_responses,
    evaluate_responses,
)
from .settings import ResponseCriteria
from .table import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, PlateletTableError, load_platelets, validate_platelets

__all__ = ["ANNOTATION_COLUMNS", "CORTICOSTEROID_DEPENDENT", "RESPONSE_AFTER_RESCUE", "BleedingNotRecordedWarning",
           "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "RESPONSE_COLUMNS", "MissingBaselineError",
           "PlateletTableError", "ResponseCriteria", "annotate_counts", "derive_responses", "evaluate_responses",
           "load_platelets", "validate_platelets"]
