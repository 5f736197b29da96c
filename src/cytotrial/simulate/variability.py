"""How a simulated trial varies beyond its design: the lab, the patients, the days and the acquisitions.

A :class:`Variability` is a set of ranges; every concrete value (a population's marker level, a day's detector
gains, a sample's debris) is drawn from the trial's seed, so each seed is a new lab with new patients. Four
scenarios are named (:data:`SCENARIOS`): ``none`` (the classic demo: fixed phenotypes, clean samples),
``stable`` (varied biology and reagents on a stable instrument), ``shifted`` (plus day-to-day detector, scatter
and staining shifts) and ``dirty`` (shifted, plus clogs, heavy debris and dead cells and short acquisitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class Variability:
    """Ranges of everything that varies between labs, patients, acquisition days and samples.

    Ranges are (low, high) of a uniform draw; ``*_sd`` are log-normal SDs.
    """

    name: str = "none"
    # reagents and biology, drawn once per seed (the lab)
    marker_level_sd: float = 0.0  # each population's level of each marker around its phenotype word
    marker_spread: tuple[float, float] = (0.35, 0.35)  # per population and marker log-SD of single cells
    brightness_sd: float = 0.0  # brightness of each marker's fluorochrome conjugate
    continua: bool = False  # Treg as a CD25 shoulder, CCR7 / CD45RA and CD24 / CD38 continua
    # composition, drawn per patient and visit
    patient_sd: float = 0.25  # between-patient log-SD of every branch weight of the composition tree
    lymphopenia_probability: float = 0.0  # patient with lymphocytes x lymphopenia_factor
    lymphopenia_factor: tuple[float, float] = (0.25, 0.5)
    b_depletion_probability: float = 0.0  # patient with B cells below ~1 % of lymphocytes (e.g. after rituximab)
    b_depletion_factor: tuple[float, float] = (0.02, 0.08)
    granulocyte_rich_probability: float = 0.0  # sample with granulocytes x granulocyte_rich_factor
    granulocyte_rich_factor: tuple[float, float] = (2.0, 3.5)
    # acquisition days (batches)
    detector_gain: tuple[float, float] = (1.0, 1.0)  # each detector's gain on a day
    scatter_gain: tuple[float, float] = (1.0, 1.0)  # FSC and SSC gains on a day
    staining: tuple[float, float] = (1.0, 1.0)  # staining strength of each marker on a day
    staining_by_marker: dict[str, tuple[float, float]] = field(default_factory=dict)  # markers that vary more
    # samples
    debris_share: tuple[float, float] = (0.05, 0.12)
    dead_share: tuple[float, float] = (0.02, 0.05)
    anomaly_probability: float | None = None  # None: the trial settings' anomaly_probability
    short_file_probability: float = 0.0  # acquisition stopped early
    short_file_fraction: tuple[float, float] = (0.08, 0.3)  # of the planned events

    @property
    def varies_phenotypes(self) -> bool:
        return self.marker_level_sd > 0 or self.brightness_sd > 0 or self.continua or \
            self.marker_spread != (0.35, 0.35)

    @property
    def shifts_days(self) -> bool:
        return any(r != (1.0, 1.0) for r in (self.detector_gain, self.scatter_gain, self.staining)) or \
            bool(self.staining_by_marker)


_STABLE = Variability(
    name="stable", marker_level_sd=0.2, marker_spread=(0.28, 0.5), brightness_sd=0.3, continua=True,
    patient_sd=0.3, lymphopenia_probability=0.15, b_depletion_probability=0.12, granulocyte_rich_probability=0.1,
)
_SHIFTED = replace(
    _STABLE, name="shifted", detector_gain=(0.75, 1.25), scatter_gain=(0.72, 1.35), staining=(0.85, 1.15),
    staining_by_marker={"FOXP3": (0.65, 1.15)},
)
_DIRTY = replace(
    _SHIFTED, name="dirty", debris_share=(0.05, 0.25), dead_share=(0.02, 0.15), anomaly_probability=0.3,
    short_file_probability=0.15,
)
SCENARIOS: dict[str, Variability] = {"none": Variability(), "stable": _STABLE, "shifted": _SHIFTED, "dirty": _DIRTY}


def variability_from(setting: str | dict | Variability | None) -> Variability:
    """A scenario by name, or a scenario (``{scenario: name, ...}``) with some of its fields overridden."""
    if isinstance(setting, Variability):
        return setting
    if setting is None:
        return SCENARIOS["none"]
    if isinstance(setting, str):
        setting = {"scenario": setting}
    settings = dict(setting)
    name = settings.pop("scenario", "none")
    if name not in SCENARIOS:
        raise ValueError(f"unknown variability scenario {name!r}; use one of {sorted(SCENARIOS)}")
    known = {f.name for f in fields(Variability)} - {"name"}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"unknown variability setting(s) {sorted(unknown)}; known: {sorted(known)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    if "staining_by_marker" in converted:
        converted["staining_by_marker"] = {k: tuple(v) for k, v in converted["staining_by_marker"].items()}
    return replace(SCENARIOS[name], **converted)
