"""Reviewer overrides: pin a gate's parameters for one sample, with the reason, in a YAML file::

    overrides:
      - sample: P01_W4
        population: Treg
        cuts: {FOXP3: 0.47}          # cuts gates: the cut in gating units (results/gates/P01_W4.json)
        reason: FOXP3 valley misplaced; set at the dip seen in the review figure

A singlets gate is pinned the same way with ``singlets: {slope: 0.82, intercept: 0.0, half_width: 0.03}``. The
workflow passes each sample's overrides to its gating job as a parameter, so changing the overrides of one
sample re-gates that sample only.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .template import GatingTemplate, TemplateError

PINNABLE = {"cuts": "cuts", "singlets": "singlets", "cluster": "cluster", "rectangle": "rectangle",
            "polygon": "polygon", "ellipse": "ellipse", "mixture": "polygon"}


def load_overrides(path: str | os.PathLike | None, template: GatingTemplate, sample_ids: set[str]) -> dict:
    """Overrides by sample: {sample: {population: pinned parameters}}; {} when there is no file.

    Raises
    ------
    TemplateError
        Naming the entry and what is wrong: unknown sample or population, a gate that cannot be pinned, a
        dimension the gate does not cut, a missing reason.
    """
    if not path or not Path(path).exists():
        return {}
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not raw.get("overrides"):
        return {}
    if not isinstance(template, GatingTemplate):
        raise TemplateError(f"{path}: overrides pin the data-driven gates of a YAML template, but the gating "
                            "template is a static GatingML file or FlowJo workspace. Edit its gates in FlowJo "
                            "instead, or empty the overrides file.")
    gates = {p.name: p for p in template.populations}
    by_sample: dict[str, dict] = {}
    for number, entry in enumerate(raw.get("overrides") or [], start=1):
        where = f"{path}: override {number}"
        sample, population = entry.get("sample"), entry.get("population")
        if sample not in sample_ids:
            raise TemplateError(f"{where} names sample '{sample}', which is not in the sample sheet.")
        if population not in gates:
            raise TemplateError(f"{where} names population '{population}', which is not in the gating template.")
        gate = gates[population]
        if gate.method not in PINNABLE:
            raise TemplateError(f"{where}: '{population}' is a {gate.method} gate, which cannot be pinned "
                                f"(only {sorted(PINNABLE)} gates can).")
        pinned = entry.get(PINNABLE[gate.method])
        if not isinstance(pinned, dict) or not pinned:
            raise TemplateError(f"{where}: give the pinned values under '{PINNABLE[gate.method]}:'.")
        if gate.method == "cuts":
            unknown = set(pinned) - {c.dim for c in gate.cuts}
            if unknown:
                raise TemplateError(f"{where}: '{population}' has no cut on {sorted(unknown)}; its cuts are on "
                                    f"{[c.dim for c in gate.cuts]}.")
        if not str(entry.get("reason", "")).strip():
            raise TemplateError(f"{where}: say why in 'reason:' (it is kept with the realised gate).")
        by_sample.setdefault(sample, {})[population] = {**pinned, "reason": str(entry["reason"])}
    return by_sample
