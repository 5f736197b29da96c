"""Gating templates: a YAML list of named populations, each with a parent, dimensions and a method.

A template reads like openCyto's CSV (alias, parent, dims, method, args), one population per entry::

    - name: T
      parent: lymphocytes
      method: cuts
      cuts:
        CD3: {keep: above, method: valley}

The methods are listed in :func:`load_template` and implemented in :mod:`cytotrial.gating.methods`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "gating_template.schema.yaml"


POOLABLE = {"cuts", "singlets", "cluster", "mixture"}


class TemplateError(ValueError):
    """A gating template is malformed or names unknown populations or markers."""


@dataclass(frozen=True)
class Cut:
    """Keep events above or below a cut point found in one dimension by a named method."""

    dim: str
    keep: str  # "above" or "below"
    method: str
    args: tuple[tuple[str, object], ...] = ()

    @property
    def key(self) -> tuple:
        return (self.dim, self.method, self.args)


@dataclass(frozen=True)
class PopulationGate:
    name: str
    parent: str
    method: str
    dims: tuple[str, ...] = ()
    cuts: tuple[Cut, ...] = ()
    args: dict = field(default_factory=dict, hash=False, compare=False)
    percent_of: str = ""  # named ancestor the population is reported against (default: its parent)
    pool: str = "sample"  # 'batch': the gate is fitted once on the pooled parent events of the acquisition batch
    partition: tuple[tuple[str, tuple], ...] = ()  # mixture gates: (name, target) of every population sharing the fit

    @property
    def fit_key(self) -> tuple:
        """Mixture gates with the same key (parent, dimensions, settings other than the target) share one fit."""
        return (self.parent, self.method, self.dims, _freeze({k: v for k, v in self.args.items()
                                                              if k not in ("target", "posterior")}))


@dataclass(frozen=True)
class GatingTemplate:
    populations: tuple[PopulationGate, ...]
    min_parent_events: int = 20

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.populations]

    @property
    def pooled(self) -> list[str]:
        """Populations whose gates are fitted on the pooled events of each acquisition batch."""
        return [p.name for p in self.populations if p.pool == "batch"]

    def dims(self) -> set[str]:
        """Every marker or channel name the template uses."""
        used = set()
        for population in self.populations:
            used.update(population.dims)
            used.update(c.dim for c in population.cuts)
        return used


def _freeze(args: dict | None) -> tuple[tuple[str, object], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (args or {}).items()))


def _ancestors(parent: str, parents: dict[str, str]) -> list[str]:
    chain = [parent]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


def load_template(path: str | os.PathLike) -> GatingTemplate:
    """Read and validate a gating template (schema, unique names, parents defined before children).

    Methods (see :mod:`cytotrial.gating.methods`): ``boundary`` (drop saturated or non-positive scatter),
    ``singlets`` (band around a robust regression of pulse height on area), ``cuts`` (one data-driven 1-D cut per
    dimension, ANDed; see :mod:`cytotrial.gating.cuts`), ``cluster`` (Gaussian mixture, component nearest a target,
    ellipse at a quantile), ``boolean`` (and/or/not of populations above), and the static ``rectangle``,
    ``polygon`` and ``ellipse``.
    Cut points found for the same parent, dimension and settings are computed once and shared, so "CD4+ CD8-" and
    "CD4- CD8+" use the same two cuts.
    """
    with open(path) as handle:
        raw = yaml.safe_load(handle)
    with open(SCHEMA_PATH) as handle:
        schema = yaml.safe_load(handle)
    try:
        jsonschema.validate(raw, schema)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise TemplateError(f"{path}: invalid gating template at {where}: {err.message}") from None
    populations = []
    seen = {"root"}
    for index, entry in enumerate(raw["populations"], start=1):
        name = entry["name"]
        if name in seen:
            raise TemplateError(f"{path}: population '{name}' (entry {index}) is defined twice (or is 'root').")
        if entry["parent"] not in seen:
            raise TemplateError(f"{path}: population '{name}' (entry {index}) has parent '{entry['parent']}', "
                                "which is not defined above it. Define parents before their children.")
        cuts = tuple(Cut(dim, spec["keep"], spec.get("method", "valley"), _freeze(spec.get("args")))
                     for dim, spec in (entry.get("cuts") or {}).items())
        percent_of = entry.get("percent_of", entry["parent"])
        ancestors = _ancestors(entry["parent"], {p.name: p.parent for p in populations})
        if percent_of not in ancestors:
            raise TemplateError(f"{path}: population '{name}' (entry {index}) has percent_of '{percent_of}', which is "
                                f"not one of its ancestors {ancestors}.")
        for cut in cuts:
            reference = dict(cut.args).get("reference")
            if reference is not None and reference not in seen:
                raise TemplateError(f"{path}: population '{name}' (entry {index}) cuts {cut.dim} on reference "
                                    f"population '{reference}', which is not defined above it.")
        if (entry.get("args") or {}).get("combine") == "any" and ((entry.get("args") or {}).get("sequential")
                                                                 or len(cuts) != 2):
            raise TemplateError(f"{path}: population '{name}' (entry {index}) has combine: any, which needs exactly "
                                "two cuts and no sequential: true.")
        pool = entry.get("pool", "sample")
        if pool == "batch" and entry["method"] not in POOLABLE:
            raise TemplateError(f"{path}: population '{name}' (entry {index}) has pool: batch, but a {entry['method']} "
                                f"gate is not fitted to the data; only {sorted(POOLABLE)} gates can be pooled.")
        populations.append(PopulationGate(name, entry["parent"], entry["method"], tuple(entry.get("dims", [])), cuts,
                                          dict(entry.get("args") or {}), percent_of, pool))
        seen.add(name)
    return GatingTemplate(_with_partitions(populations, path), int(raw.get("min_parent_events", 20)))


def _with_partitions(populations: list[PopulationGate], path) -> tuple[PopulationGate, ...]:
    """Mixture gates that share a fit (same parent, dimensions and settings) learn each other's targets."""
    groups: dict[tuple, list[PopulationGate]] = {}
    for gate in populations:
        if gate.method == "mixture":
            unknown = set(gate.args["target"]) - set(gate.dims)
            if unknown:
                raise TemplateError(f"{path}: population '{gate.name}' has a mixture target on {sorted(unknown)}, "
                                    f"which are not among its dims {list(gate.dims)}.")
            groups.setdefault(gate.fit_key, []).append(gate)
    out = []
    for gate in populations:
        if gate.method == "mixture":
            partition = tuple((g.name, _freeze(g.args["target"])) for g in groups[gate.fit_key])
            gate = replace(gate, partition=partition)
        out.append(gate)
    return tuple(out)
