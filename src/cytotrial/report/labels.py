"""The trial's wording and colours in figures, report and workbook: from the config's ``labels`` and the data.

Nothing here knows the demo trial: visit labels, what study day 0 is, cohort labels and colours and the dose's
wording are the config's (``labels``); a cohort without a configured colour gets the next colour of
:data:`PALETTE` in sorted order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")  # Dark2


@dataclass(frozen=True)
class TrialLabels:
    """Wording and colours of one trial (the config's ``labels`` section)."""

    day0: str = "day 0"
    visits: Mapping[str, str] = field(default_factory=dict)
    cohorts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    dose: str = "dose (x10^6/kg)"

    @classmethod
    def from_config(cls, labels: Mapping | None) -> "TrialLabels":
        labels = dict(labels or {})
        return cls(day0=labels.get("day0", cls.day0), visits=dict(labels.get("visits") or {}),
                   cohorts={str(k): dict(v or {}) for k, v in (labels.get("cohorts") or {}).items()},
                   dose=labels.get("dose", cls.dose))

    def visit(self, visit: str) -> str:
        return self.visits.get(str(visit), str(visit))

    def visit_key(self, visits: Iterable[str]) -> str:
        """'BL = baseline; M3 = month 3' for the visits whose label differs from the name."""
        return "; ".join(f"{v} = {self.visit(v)}" for v in visits if self.visit(v) != str(v))

    def cohort(self, cohort: str) -> str:
        return self.cohorts.get(str(cohort), {}).get("label", str(cohort))

    def cohort_colours(self, cohorts: Iterable[str]) -> dict[str, str]:
        """cohort -> colour: the configured one, else the palette's in sorted order of the other cohorts."""
        names = sorted({str(c) for c in cohorts})
        configured = {c: self.cohorts[c]["colour"] for c in names if self.cohorts.get(c, {}).get("colour")}
        others = [c for c in names if c not in configured]
        return {**configured, **{c: PALETTE[i % len(PALETTE)] for i, c in enumerate(others)}}
