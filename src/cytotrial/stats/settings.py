"""Settings of the statistical analysis (the ``statistics:`` section of a workflow config).

Which populations are analysed and which hold a question of their own in the FDR families are config lists, not
names in the code: gating templates differ between trials and change over time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PRIMARY: dict = {"population": "Treg", "visits": ["W4", "W12"], "value": "percent_of", "complete_cases": True}
PRIMARY_KEYS = set(DEFAULT_PRIMARY)
RATIO_KEYS = {"name", "numerator", "denominator", "subtract_numerator"}


@dataclass(frozen=True)
class Ratio:
    """A ratio of two populations' event counts in the same sample, analysed like a population.

    ``subtract_numerator``: the denominator is ``denominator`` minus ``numerator`` (e.g. Treg / conventional CD4,
    conventional CD4 = CD4 - Treg).
    """

    name: str
    numerator: str
    denominator: str
    subtract_numerator: bool = False

    @property
    def label(self) -> str:
        """The denominator as written in the tables."""
        return f"{self.denominator} - {self.numerator}" if self.subtract_numerator else self.denominator


@dataclass(frozen=True)
class StatisticsSettings:
    """What the immune-change statistics analyse. ``from_dict`` builds one from a config mapping.

    Attributes
    ----------
    primary_endpoint
        population, visits, value and complete_cases (True: only patients with a value at baseline and at every
        endpoint visit; False: each patient's mean change over the endpoint visits it has).
    technical_populations
        Cleaning gates (boundary, cells, singlets, live, leukocytes): left out of every statistic.
    exclude_from_fdr
        Populations kept in the tables but outside every FDR family, e.g. a gate duplicating another one
        (CD25hi_CD127lo and Treg).
    complements
        Sets of populations that add up to their parent (NK_bright + NK_dim; the four memory quadrants): their
        changes are not separate questions, so the last population listed in each set is outside the FDR families.
    ratios
        Ratios of population counts analysed like populations (CD4/CD8, Treg/conventional CD4).
    rescue_sample_window_days
        Immune samples drawn on the day of a rescue therapy up to this many days after it (days d..d+N-1) are
        flagged and left out of the primary and change analyses (kept in the sensitivity table); 0: none.
    rescue_platelet_window_days
        Platelet counts in the same kind of window after a rescue therapy are left out of the platelet
        correlations; 0: none.
    absolute_counts
        Analyse absolute counts (cells/uL, ``abs_count``) like the percentages when the population table has them.
    """

    primary_endpoint: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_PRIMARY))
    technical_populations: tuple[str, ...] = ("boundary", "cells", "singlets", "live", "leukocytes")
    exclude_from_fdr: tuple[str, ...] = ()
    complements: tuple[tuple[str, ...], ...] = ()
    ratios: tuple[Ratio, ...] = ()
    rescue_sample_window_days: int = 56
    rescue_platelet_window_days: int = 56
    absolute_counts: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.primary_endpoint) - PRIMARY_KEYS)
        if unknown:
            raise ValueError(f"statistics.primary_endpoint: unknown key(s) {unknown}; known: {sorted(PRIMARY_KEYS)}")
        object.__setattr__(self, "primary_endpoint", {**DEFAULT_PRIMARY, **self.primary_endpoint})
        for name in ("rescue_sample_window_days", "rescue_platelet_window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"statistics.{name} must be a whole number of days >= 0, not {value!r}")
        for members in self.complements:
            if len(members) < 2:
                raise ValueError(f"statistics.complements: {list(members)} has fewer than 2 populations; list each "
                                 f"set of populations that adds up to its parent")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> StatisticsSettings:
        """Settings from a config mapping; missing keys keep their defaults, unknown keys are an error."""
        d = dict(d or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ValueError(f"unknown statistics setting(s): {', '.join(unknown)}; known settings: {', '.join(known)}")
        for key in ("technical_populations", "exclude_from_fdr"):
            if key in d:
                d[key] = tuple(d[key])
        if "complements" in d:
            d["complements"] = tuple(tuple(members) for members in d["complements"])
        if "ratios" in d:
            d["ratios"] = tuple(_ratio(r) for r in d["ratios"])
        return cls(**d)

    def outside_fdr(self, populations: Iterable[str]) -> dict[str, str]:
        """Population -> why it is outside the FDR families, for the populations present; names of the settings
        that are not present are logged (a renamed gate must not silently re-enter the families)."""
        present = list(dict.fromkeys(populations))
        reasons = {p: "listed in statistics.exclude_from_fdr" for p in self.exclude_from_fdr if p in present}
        for members in self.complements:
            found = [p for p in members if p in present]
            if len(found) >= 2:
                reasons.setdefault(found[-1], f"complement of {', '.join(found[:-1])} (statistics.complements)")
        configured = [*self.exclude_from_fdr, *(p for members in self.complements for p in members)]
        absent = [p for p in dict.fromkeys(configured) if p not in present]
        if absent:
            log.warning("statistics.exclude_from_fdr / complements name population(s) not in the population table: "
                        "%s", ", ".join(absent))
        return reasons


def _ratio(entry: Mapping[str, Any] | Ratio) -> Ratio:
    if isinstance(entry, Ratio):
        return entry
    unknown = sorted(set(entry) - RATIO_KEYS)
    missing = sorted({"name", "numerator", "denominator"} - set(entry))
    if unknown or missing:
        raise ValueError(f"statistics.ratios entry {dict(entry)}: unknown key(s) {unknown}, missing {missing}; an "
                         f"entry has name, numerator, denominator and optionally subtract_numerator")
    return Ratio(str(entry["name"]), str(entry["numerator"]), str(entry["denominator"]),
                 bool(entry.get("subtract_numerator", False)))
