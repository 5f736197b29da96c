"""Criteria of the platelet response (IWG 2009; the ``response:`` section of a workflow config).

Defaults follow Rodeghiero et al., Blood 2009;113:2386 (the International Working Group, IWG, on ITP): complete
response (CR) >= 100 x10^9/L, response (R) >= 30 x10^9/L and at least twice the baseline count, both with
documented absence of bleeding, confirmed on 2 counts at least 7 days apart; loss confirmed on 2 counts at least
1 day apart, or bleeding. A response that cannot be attributed to the treatment (first confirmed after a rescue
therapy) and a corticosteroid-dependent patient are not responders. The optional re-evaluation after rescue
(``rescue_reevaluation_days``, off by default) follows the romiplostim trials (Kuter et al., Lancet 2008), where
counts within 8 weeks after rescue medication were not counted and later counts were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

RENAMED = {"rescue_exclusion_days": "rescue_reevaluation_days (null: a response after rescue is never the "
                                    "treatment's; 56: re-evaluate from 8 weeks after each rescue)"}
"""Settings of earlier versions and what replaced them, named in the error for an unknown setting."""


@dataclass(frozen=True)
class ResponseCriteria:
    """Thresholds and time rules of the IWG 2009 platelet response. ``from_dict`` builds one from a mapping.

    Attributes
    ----------
    cr_threshold
        Complete response: count >= this (x10^9/L) and no bleeding.
    r_threshold, r_fold
        Response: count >= ``r_threshold`` and >= ``r_fold`` x the baseline count, and no bleeding.
    confirm_days
        A response (CR or R) needs two consecutive qualifying counts at least this many days apart (IWG: "at
        least 7 days apart"); consecutive means no measured, evaluable, non-qualifying count between them.
        Set 8 for a literal reading of "more than 7 days apart".
    loss_confirm_days
        A loss needs two consecutive non-qualifying counts at least this many days apart (IWG: 1 day). Bleeding
        on a count ends a response on that day without confirmation.
    rescue_reevaluation_days
        None (default, IWG): a response first confirmed on or after a rescue therapy is a "response after
        rescue", NR for the treatment. A number N (e.g. 56, the romiplostim trials' 8 weeks): counts from each
        rescue day d to d + N - 1 are excluded and counts from d + N on are evaluated as the treatment's again.
    baseline_day
        Study day of the baseline count (day 0: start of treatment).
    baseline_window_days
        With no count on ``baseline_day``, the latest count in this many days before it is the baseline.
    window_days
        Evaluate counts up to this study day (the assessment window; the workflow sets the protocol's last
        visit); None: up to each patient's last count.
    """

    cr_threshold: float = 100.0
    r_threshold: float = 30.0
    r_fold: float = 2.0
    confirm_days: int = 7
    loss_confirm_days: int = 1
    rescue_reevaluation_days: int | None = None
    baseline_day: int = 0
    baseline_window_days: int = 7
    window_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("cr_threshold", "r_threshold", "r_fold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"response.{name} must be a number >= 0, not {value!r}")
        for name in ("confirm_days", "loss_confirm_days", "baseline_window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"response.{name} must be a whole number of days >= 0, not {value!r}")
        if isinstance(self.baseline_day, bool) or not isinstance(self.baseline_day, int):
            raise ValueError(f"response.baseline_day must be a whole study day, not {self.baseline_day!r}")
        for name in ("window_days", "rescue_reevaluation_days"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"response.{name} must be a whole number of days > 0 or null, not {value!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ResponseCriteria:
        """Criteria from a config mapping; missing keys keep their defaults, unknown keys are an error.

        Raises
        ------
        ValueError
            For an unknown key (naming it, what replaced it if it was renamed, and the known ones) or an invalid
            value.
        """
        d = dict(d or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            renamed = "".join(f"; {k} was replaced by {RENAMED[k]}" for k in unknown if k in RENAMED)
            raise ValueError(f"unknown response setting(s): {', '.join(unknown)}{renamed}; known settings: "
                             f"{', '.join(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping of every setting, e.g. for a run log."""
        return dataclasses.asdict(self)
