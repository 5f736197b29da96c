"""The package layering of src/cytotrial (docs/architecture.md): imports go one way, from a later stage to an
earlier one, and no two subpackages import each other. The imports are read with ``ast`` (every import
statement, also those inside functions), nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Stage order: a unit may import from its own unit and from any unit of an earlier layer, never from a later one
# nor from another unit of its own layer. A unit is a subpackage or a top-level module of cytotrial.
LAYERS = [
    {"config", "numeric"},  # settings; quantiles and robust regression (used by preprocess and gating)
    {"io"},  # FCS reading and writing, panel, tables, sample sheets, de-identification, provenance
    {"preprocess", "simulate"},  # compensation, transforms, event QC; the demo trial's FCS files (io only)
    {"gating"},
    {"quantify", "export"},  # population tables from gating results; FCS / FlowJo export of gated events
    {"stats", "response"},
    {"report"},  # tables, figures, workbook
    {"discovery"},  # clustering of gated events; its figures use the report's colours and figure helper
    {"steps", "init_project"},  # entry points: rule scripts' per-sample steps; `cytotrial init`
    {"cli"},  # the command line
]
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, src: Path = SRC) -> list[tuple[str, int]]:
    """(absolute cytotrial module, line) of every import statement in ``path`` (``from . import x`` counts as
    ``package.x``)."""
    name = module_name(path, src)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            if node.module is None:  # from . import a, b: the modules a and b
                found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((base, node.lineno))
    return [(module, line) for module, line in found if module.split(".")[0] == "cytotrial"]


def unit_of(module: str) -> str:
    """The layering unit of a cytotrial module: its subpackage or top-level module."""
    parts = module.split(".")
    if len(parts) < 2:
        raise AssertionError(f"'{module}' imports the cytotrial package itself; import a stage package")
    return parts[1]


def import_edges(src: Path = SRC) -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, where) for every import between two different units."""
    edges = []
    for path in sorted((src / "cytotrial").rglob("*.py")):
        if path.name == "__init__.py" and path.parent == src / "cytotrial":
            continue
        unit = unit_of(module_name(path, src))
        for module, line in imported_modules(path, src):
            if unit_of(module) != unit:
                edges.append((unit, unit_of(module), f"{path.relative_to(src)}:{line} imports {module}"))
    return edges


def import_cycles(edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit in the import graph (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in (SRC / "cytotrial").rglob("*.py") if p.parent != SRC / "cytotrial"
             or p.name != "__init__.py"}
    assert units - set(LAYER_OF) == set(), "place the new package or module in LAYERS (and docs/architecture.md)"


def test_no_import_cycle_between_subpackages():
    edges = import_edges()
    cycles = import_cycles(edges)
    detail = [where for group in cycles for a, b, where in edges if a in group and b in group]
    assert cycles == [], f"import cycles between {cycles}:\n" + "\n".join(detail)


def test_imports_follow_the_stage_order():
    against = [f"{where} ({a}, layer {LAYER_OF[a]}, may not import {b}, layer {LAYER_OF[b]})"
               for a, b, where in import_edges() if LAYER_OF[b] >= LAYER_OF[a]]
    assert against == [], "imports against the stage order:\n" + "\n".join(against)


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path):
    """The checks themselves, on a made-up package: gating -> quantify -> gating is a cycle and gating's import
    of quantify goes against the order (the import inside a function counts too)."""
    package = tmp_path / "cytotrial"
    (package / "gating").mkdir(parents=True)
    (package / "quantify").mkdir()
    (package / "__init__.py").write_text("")
    (package / "gating" / "__init__.py").write_text("")
    (package / "gating" / "sample.py").write_text("def f():\n    from ..quantify import table\n")
    (package / "quantify" / "__init__.py").write_text("from ..gating import engine\n")
    edges = import_edges(tmp_path)
    assert import_cycles(edges) == [["gating", "quantify"]]
    assert [(a, b) for a, b, _ in edges if LAYER_OF[b] >= LAYER_OF[a]] == [("gating", "quantify")]


@pytest.mark.parametrize("statement, expected", [
    ("from .engine import x", "cytotrial.gating.engine"),
    ("from ..io.fcs import read_fcs", "cytotrial.io.fcs"),
    ("from . import static", "cytotrial.gating.static"),
    ("import cytotrial.stats.changes", "cytotrial.stats.changes"),
])
def test_relative_imports_are_resolved(tmp_path, statement, expected):
    path = tmp_path / "cytotrial" / "gating" / "cuts.py"
    path.parent.mkdir(parents=True)
    path.write_text(statement + "\n")
    assert module_name(path, tmp_path) == "cytotrial.gating.cuts"
    assert [module for module, _ in imported_modules(path, tmp_path)] == [expected]
