"""The biology of the simulated blood: leukocyte leaf populations, their marker phenotypes and light scatter.

Every simulated event carries one leaf label. Leaves are the finest cell types; the populations a gating template
reports (CD4 T cells, Treg, CD4 central memory...) are unions of leaves (see :mod:`cytotrial.simulate.truth`).
Four artefact leaves are added at acquisition: ``debris``, ``doublet``, ``dead`` and ``nonleukocyte`` (unlysed red
cells and platelet clumps: cell-sized, CD45-negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instrument import MARKERS

# Intensity of a clearly positive cell for each marker, in its own detector's units (linear, before spillover).
MARKER_POSITIVE_LEVEL = {
    "CD45": 6000, "CD16": 8000, "CCR7": 3000, "Live/Dead": 10000, "CD3": 8000, "CD56": 2500, "CD14": 8000,
    "CD19": 6000, "CD45RA": 5000, "CD4": 6000, "CD25": 2500, "CD24": 5000, "CD38": 4000, "CD127": 3000,
    "FOXP3": 3000, "HLA-DR": 6000, "CD8": 12000,
}
# Phenotype words and their multiple of the marker's positive level.
LEVELS = {"-": 0.0, "lo": 0.15, "int": 0.4, "+": 1.0, "hi": 3.0, "vhi": 10.0}
# Relative autofluorescence seen in each detector (violet/UV/blue detectors see most).
AUTOFLUORESCENCE_SPECTRUM = {
    "CD45": 1.5, "CD16": 0.3, "CCR7": 1.2, "Live/Dead": 1.5, "CD3": 0.6, "CD56": 0.4, "CD14": 0.3, "CD19": 0.2,
    "CD45RA": 1.0, "CD4": 0.4, "CD25": 0.6, "CD24": 0.5, "CD38": 0.3, "CD127": 0.2, "FOXP3": 0.15, "HLA-DR": 0.15,
    "CD8": 0.1,
}
DEFAULT_LOG_SD = 0.35


@dataclass(frozen=True)
class Leaf:
    """One simulated cell type: marker phenotype, autofluorescence and light scatter."""

    name: str
    phenotype: dict[str, str]
    autofluorescence: float = 40.0
    fsc: float = 55000.0
    ssc: float = 14000.0
    log_sd: dict[str, float] = field(default_factory=dict)


def _t(extra: dict[str, str]) -> dict[str, str]:
    return {"CD45": "hi", "CD3": "+", "CD38": "lo", **extra}


def _b(extra: dict[str, str]) -> dict[str, str]:
    return {"CD45": "hi", "CD19": "+", "HLA-DR": "+", "CCR7": "+", "CD45RA": "+", **extra}


LEAVES: tuple[Leaf, ...] = (
    Leaf("CD4_Tconv_naive", _t({"CD4": "+", "CD45RA": "+", "CCR7": "+", "CD127": "+"})),
    Leaf("CD4_Tconv_CM", _t({"CD4": "+", "CCR7": "+", "CD127": "+", "CD25": "lo"})),
    Leaf("CD4_Tconv_EM", _t({"CD4": "+", "CD127": "int", "CD25": "lo", "HLA-DR": "lo"})),
    Leaf("CD4_Tconv_TEMRA", _t({"CD4": "+", "CD45RA": "+", "CD127": "int"})),
    Leaf("CD4_Tact", _t({"CD4": "+", "CD25": "+", "CD127": "+", "FOXP3": "lo", "HLA-DR": "int"})),
    Leaf("Treg_naive", _t({"CD4": "+", "CD45RA": "+", "CCR7": "+", "CD25": "hi", "CD127": "lo", "FOXP3": "+"})),
    Leaf("Treg_CM", _t({"CD4": "+", "CCR7": "+", "CD25": "hi", "CD127": "lo", "FOXP3": "+"})),
    Leaf("Treg_EM", _t({"CD4": "+", "CD25": "hi", "CD127": "lo", "FOXP3": "+", "HLA-DR": "lo"})),
    Leaf("CD8_naive", _t({"CD8": "+", "CD45RA": "+", "CCR7": "+", "CD127": "+"})),
    Leaf("CD8_CM", _t({"CD8": "+", "CCR7": "+", "CD127": "+"})),
    Leaf("CD8_EM", _t({"CD8": "+", "CD127": "int", "HLA-DR": "lo"})),
    Leaf("CD8_TEMRA", _t({"CD8": "+", "CD45RA": "+", "CD127": "lo", "CD56": "lo", "CD16": "lo"})),
    Leaf("T_DN", _t({"CD45RA": "int", "CCR7": "lo", "CD127": "int"})),
    Leaf("B_naive", _b({"CD24": "int", "CD38": "int"})),
    Leaf("B_memory", _b({"CD24": "+", "CD38": "lo", "CD45RA": "int"})),
    Leaf("Breg", _b({"CD24": "hi", "CD38": "hi"})),
    Leaf("Plasmablast", _b({"CD19": "lo", "CD38": "vhi", "CCR7": "lo", "HLA-DR": "int"}), fsc=70000, ssc=20000),
    Leaf("NK_dim", {"CD45": "hi", "CD56": "int", "CD16": "hi", "CD45RA": "+", "CD38": "+", "CD8": "lo"},
         fsc=60000, ssc=19000),
    Leaf("NK_bright", {"CD45": "hi", "CD56": "hi", "CD16": "lo", "CD45RA": "+", "CD38": "+", "CD25": "lo",
                       "CD127": "lo", "CCR7": "lo"}, fsc=63000, ssc=17000),
    Leaf("Mono_classical", {"CD45": "hi", "CD14": "hi", "HLA-DR": "hi", "CD4": "lo", "CD38": "+"},
         autofluorescence=150, fsc=90000, ssc=45000),
    Leaf("Mono_intermediate", {"CD45": "hi", "CD14": "hi", "CD16": "+", "HLA-DR": "hi", "CD4": "lo", "CD38": "+"},
         autofluorescence=150, fsc=92000, ssc=42000),
    Leaf("Mono_nonclassical", {"CD45": "hi", "CD14": "lo", "CD16": "+", "HLA-DR": "+", "CD4": "lo"},
         autofluorescence=120, fsc=85000, ssc=38000),
    Leaf("Neutrophil", {"CD45": "+", "CD16": "hi", "CD14": "lo", "CD24": "hi", "CD38": "lo"},
         autofluorescence=300, fsc=105000, ssc=130000, log_sd={"CD16": 0.5}),
    Leaf("Eosinophil", {"CD45": "+", "CD24": "+", "CD38": "lo"}, autofluorescence=800, fsc=105000, ssc=185000),
)
LEAF_NAMES: tuple[str, ...] = tuple(leaf.name for leaf in LEAVES)
ARTEFACT_LEAVES: tuple[str, ...] = ("debris", "doublet", "dead", "nonleukocyte")
ALL_LABELS: tuple[str, ...] = (*LEAF_NAMES, *ARTEFACT_LEAVES)
LABEL_CODE = {name: code for code, name in enumerate(ALL_LABELS)}


@dataclass(frozen=True)
class Phenotypes:
    """Every leaf's marker levels, single-cell spreads, autofluorescence and scatter, as arrays [leaf, marker]."""

    means: np.ndarray  # (leaves, markers) linear stain level of a typical cell, before autofluorescence
    log_sds: np.ndarray  # (leaves, markers) log-SD of single cells around it
    autofluorescence: np.ndarray  # (leaves,)
    scatter: np.ndarray  # (leaves, 2) FSC-A and SSC-A


def classic_phenotypes() -> Phenotypes:
    """The fixed phenotypes of :data:`LEAVES` (the ``none`` variability scenario)."""
    means = np.zeros((len(LEAVES), len(MARKERS)))
    log_sds = np.full((len(LEAVES), len(MARKERS)), DEFAULT_LOG_SD)
    for i, leaf in enumerate(LEAVES):
        unknown = set(leaf.phenotype) - set(MARKERS)
        if unknown:
            raise ValueError(f"leaf {leaf.name} names markers not in the panel: {sorted(unknown)}")
        for j, marker in enumerate(MARKERS):
            means[i, j] = MARKER_POSITIVE_LEVEL[marker] * LEVELS[leaf.phenotype.get(marker, "-")]
            log_sds[i, j] = leaf.log_sd.get(marker, DEFAULT_LOG_SD)
    autofluorescence = np.array([leaf.autofluorescence for leaf in LEAVES])
    scatter = np.array([[leaf.fsc, leaf.ssc] for leaf in LEAVES])
    return Phenotypes(means, log_sds, autofluorescence, scatter)


# Continua of real blood (variability ``continua``): (leaf, marker) -> (multiple of the marker's positive level,
# log-SD of single cells). Tregs are a CD25-high shoulder of the CD127-low CD4 cells; memory CD4 cells spread from
# CD25-negative to CD25-intermediate; CCR7 and CD45RA are continua between naive, central and effector memory;
# transitional B cells (Breg) are the CD24-high CD38-high end of naive B.
CONTINUA: dict[tuple[str, str], tuple[float, float]] = {
    ("CD4_Tconv_CM", "CD25"): (0.2, 0.8), ("CD4_Tconv_EM", "CD25"): (0.3, 0.8),
    ("CD4_Tconv_CM", "CD127"): (0.9, 0.4), ("CD4_Tconv_EM", "CD127"): (0.45, 0.5),
    ("CD4_Tconv_TEMRA", "CD127"): (0.4, 0.5), ("CD4_Tact", "CD25"): (0.8, 0.5), ("CD4_Tact", "CD127"): (0.8, 0.4),
    ("CD4_Tact", "FOXP3"): (0.08, 0.6),
    **{(treg, marker): value for treg in ("Treg_naive", "Treg_CM", "Treg_EM")
       for marker, value in {"CD25": (1.1, 0.6), "CD127": (0.15, 0.55), "FOXP3": (0.5, 0.5)}.items()},
    **{(f"{lineage}_CM", "CCR7"): (0.7, 0.5) for lineage in ("CD4_Tconv", "Treg", "CD8")},
    **{(f"{lineage}_EM", "CCR7"): (0.06, 0.65) for lineage in ("CD4_Tconv", "Treg", "CD8")},
    **{(leaf, "CCR7"): (0.05, 0.6) for leaf in ("CD4_Tconv_TEMRA", "CD8_TEMRA")},
    **{(leaf, "CD45RA"): (0.04, 0.7) for leaf in ("CD4_Tconv_CM", "CD4_Tconv_EM", "Treg_CM", "Treg_EM",
                                                  "CD8_CM", "CD8_EM")},
    **{(leaf, "CD45RA"): (0.8, 0.5) for leaf in ("CD4_Tconv_TEMRA", "CD8_TEMRA")},
    ("B_naive", "CD24"): (0.4, 0.4), ("B_naive", "CD38"): (0.4, 0.4),
    ("B_memory", "CD24"): (1.0, 0.4), ("B_memory", "CD38"): (0.1, 0.6),
    ("Breg", "CD24"): (1.6, 0.45), ("Breg", "CD38"): (1.6, 0.45),
}
SCATTER_LEVEL_SD = 0.08  # a lab's scatter settings: each leaf's FSC and SSC level, log-SD
AUTOFLUORESCENCE_LEVEL_SD = 0.3


def lab_phenotypes(variability, rng: np.random.Generator) -> Phenotypes:
    """The phenotypes of one simulated lab: the classic ones with continua, each population's marker levels and
    spreads drawn around them, each conjugate's brightness and each leaf's scatter and autofluorescence.

    Parameters
    ----------
    variability
        A :class:`cytotrial.simulate.variability.Variability`.
    rng
        The lab's random stream (drawn once per seed).
    """
    classic = classic_phenotypes()
    if not variability.varies_phenotypes:
        return classic
    means, log_sds = classic.means.copy(), rng.uniform(*variability.marker_spread, classic.means.shape)
    for i, leaf in enumerate(LEAVES):  # a marker's own wider spread (e.g. neutrophil CD16) stays
        for marker, sd in leaf.log_sd.items():
            log_sds[i, MARKERS.index(marker)] = sd
    if variability.continua:
        for (leaf, marker), (level, sd) in CONTINUA.items():
            i, j = LEAF_NAMES.index(leaf), MARKERS.index(marker)
            means[i, j], log_sds[i, j] = MARKER_POSITIVE_LEVEL[marker] * level, sd
    means *= np.exp(variability.marker_level_sd * rng.standard_normal(means.shape))
    brightness = np.clip(np.exp(variability.brightness_sd * rng.standard_normal(len(MARKERS))), 0.4, 2.5)
    means *= brightness[None, :]
    autofluorescence = classic.autofluorescence * np.exp(AUTOFLUORESCENCE_LEVEL_SD * rng.standard_normal(len(LEAVES)))
    scatter = classic.scatter * np.exp(SCATTER_LEVEL_SD * rng.standard_normal(classic.scatter.shape))
    return Phenotypes(means, log_sds, autofluorescence, scatter)


_CLASSIC = classic_phenotypes()
_AF_SPECTRUM = np.array([AUTOFLUORESCENCE_SPECTRUM[m] for m in MARKERS])
FSC_LOG_SD = 0.10
SSC_LOG_SD = 0.18


def draw_cells(leaf_codes: np.ndarray, rng: np.random.Generator, phenotypes: Phenotypes = _CLASSIC,
               staining: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True dye signals and area scatter for cells of the given leaves.

    Parameters
    ----------
    leaf_codes
        (n,) integer codes into :data:`LEAVES`.
    phenotypes
        The lab's phenotypes (default: the classic ones).
    staining
        (17,) staining strength of each marker on the acquisition day (default 1).

    Returns
    -------
    signal : ndarray, shape (n, 17)
        True fluorescence per marker, linear units (autofluorescence included).
    scatter : ndarray, shape (n, 2)
        FSC-A and SSC-A.
    """
    n = leaf_codes.size
    autofluorescence = phenotypes.autofluorescence[leaf_codes] * np.exp(0.4 * rng.standard_normal(n))
    stained = phenotypes.means[leaf_codes] * np.exp(phenotypes.log_sds[leaf_codes] *
                                                    rng.standard_normal((n, len(MARKERS))))
    if staining is not None:
        stained *= staining[None, :]
    signal = autofluorescence[:, None] * _AF_SPECTRUM[None, :] + stained
    scatter = phenotypes.scatter[leaf_codes] * np.exp(rng.standard_normal((n, 2)) * np.array([FSC_LOG_SD, SSC_LOG_SD]))
    return signal, scatter


def draw_debris(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell fragments, platelets and unlysed-red-cell ghosts: low FSC, no stain, weak autofluorescence."""
    signal = 20.0 * np.exp(0.6 * rng.standard_normal((n, 1))) * _AF_SPECTRUM[None, :]
    signal = signal + 60.0 * rng.exponential(size=(n, len(MARKERS))) * (rng.random((n, len(MARKERS))) < 0.1)
    fsc = 9000.0 * np.exp(0.7 * rng.standard_normal(n))
    ssc = 5000.0 * np.exp(0.9 * rng.standard_normal(n))
    return signal, np.column_stack([fsc, ssc])


def kill_cells(signal: np.ndarray, scatter: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dead cells: dimmer surface stain, bright amine-reactive viability dye, smaller FSC."""
    dead_signal = signal * 0.5
    viability = MARKERS.index("Live/Dead")
    dead_signal[:, viability] += MARKER_POSITIVE_LEVEL["Live/Dead"] * 2.5 * np.exp(0.4 * rng.standard_normal(len(signal)))
    dead_scatter = scatter * np.array([0.55, 0.9]) * np.exp(0.1 * rng.standard_normal(scatter.shape))
    return dead_signal, dead_scatter


def draw_nonleukocytes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unlysed red cells and platelet aggregates: lymphocyte-sized scatter, CD45-negative, unstained."""
    signal = 30.0 * np.exp(0.5 * rng.standard_normal((n, 1))) * _AF_SPECTRUM[None, :]
    signal = signal * np.exp(0.3 * rng.standard_normal((n, len(MARKERS))))
    fsc = 45000.0 * np.exp(0.25 * rng.standard_normal(n))
    ssc = 9000.0 * np.exp(0.4 * rng.standard_normal(n))
    return signal, np.column_stack([fsc, ssc])
