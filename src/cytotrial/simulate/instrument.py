"""The simulated cytometer: a 5-laser, 17-colour instrument like a BD LSRFortessa/FACSymphony.

Detector values are produced as a real instrument would: the true fluorescence of every dye is spread over the
detectors by a spillover matrix derived from excitation and emission spectra, photon (Poisson-like) and
electronic noise are added per detector, and everything is clipped at the detector range ($PnR).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DETECTOR_RANGE = 262144.0
"""$PnR of every parameter (18-bit, as BD DIVA writes)."""

TIMESTEP_S = 0.01
"""$TIMESTEP: the Time channel counts in units of 10 ms."""


@dataclass(frozen=True)
class Detector:
    """A fluorescence detector named by the dye it is built for, as cytometers name channels ($PnN)."""

    channel: str  # $PnN, e.g. "PE-Cy7-A"
    marker: str  # $PnS, e.g. "CD127"
    laser: str  # "UV", "V", "B", "YG", "R"
    emission_nm: float  # peak emission of the dye and centre of the detector's band-pass filter
    donor_emission_nm: float | None = None  # tandem dyes also leak their donor's emission
    voltage: int = 500


DETECTORS: tuple[Detector, ...] = (
    Detector("BUV395-A", "CD45", "UV", 395),
    Detector("BUV737-A", "CD16", "UV", 737),
    Detector("BV421-A", "CCR7", "V", 421),
    Detector("BV510-A", "Live/Dead", "V", 510),
    Detector("BV605-A", "CD3", "V", 605, donor_emission_nm=421),
    Detector("BV650-A", "CD56", "V", 650, donor_emission_nm=421),
    Detector("BV711-A", "CD14", "V", 711, donor_emission_nm=421),
    Detector("BV786-A", "CD19", "V", 786, donor_emission_nm=421),
    Detector("FITC-A", "CD45RA", "B", 525),
    Detector("PerCP-Cy5.5-A", "CD4", "B", 695),
    Detector("PE-A", "CD25", "YG", 578),
    Detector("PE-CF594-A", "CD24", "YG", 612, donor_emission_nm=578),
    Detector("PE-Cy5-A", "CD38", "YG", 667, donor_emission_nm=578),
    Detector("PE-Cy7-A", "CD127", "YG", 780, donor_emission_nm=578),
    Detector("APC-A", "FOXP3", "R", 660),
    Detector("APC-R700-A", "HLA-DR", "R", 712, donor_emission_nm=660),
    Detector("APC-H7-A", "CD8", "R", 780, donor_emission_nm=660),
)

MARKERS: tuple[str, ...] = tuple(d.marker for d in DETECTORS)
SCATTER_CHANNELS: tuple[str, ...] = ("FSC-A", "FSC-H", "SSC-A", "SSC-H")
CHANNELS: tuple[str, ...] = (*SCATTER_CHANNELS, *(d.channel for d in DETECTORS), "Time")

# Relative excitation of each dye family by each laser (rows: family; columns: laser).
_LASERS = ("UV", "V", "B", "YG", "R")
_EXCITATION = {
    "BUV395": (1.0, 0.02, 0.0, 0.0, 0.0),
    "BUV737": (1.0, 0.08, 0.0, 0.02, 0.03),
    "BV": (0.15, 1.0, 0.0, 0.0, 0.0),
    "FITC": (0.02, 0.02, 1.0, 0.03, 0.0),
    "PerCP": (0.02, 0.05, 1.0, 0.30, 0.02),
    "PE": (0.02, 0.01, 0.45, 1.0, 0.0),
    "PE-Cy5": (0.02, 0.01, 0.45, 1.0, 0.45),
    "PE-Cy7": (0.02, 0.01, 0.45, 1.0, 0.05),
    "APC": (0.0, 0.0, 0.0, 0.10, 1.0),
}
# Emission spectra fall steeply on the blue side of their peak and tail off to the red (Stokes shift).
_EMISSION_SD_BLUE_NM = 14.0
_EMISSION_SD_RED_NM = 35.0
_DONOR_LEAK = 0.05  # fraction of a tandem's emission left at the donor's wavelength


def _dye_family(channel: str) -> str:
    dye = channel.removesuffix("-A")
    if dye.startswith("BUV"):
        return dye
    if dye.startswith("BV"):
        return "BV"
    if dye.startswith("APC"):
        return "APC"
    if dye in ("PE-Cy5", "PE-Cy7"):
        return dye
    if dye.startswith("PE"):
        return "PE"
    if dye.startswith("PerCP"):
        return "PerCP"
    return dye


def _emission(detector: Detector, wavelength_nm: float) -> float:
    def peak(centre: float) -> float:
        sd = _EMISSION_SD_RED_NM if wavelength_nm > centre else _EMISSION_SD_BLUE_NM
        return float(np.exp(-0.5 * ((wavelength_nm - centre) / sd) ** 2))

    value = peak(detector.emission_nm)
    if detector.donor_emission_nm is not None:
        value = (1 - _DONOR_LEAK) * value + _DONOR_LEAK * peak(detector.donor_emission_nm)
    return value


def spillover_matrix(min_value: float = 0.002) -> np.ndarray:
    """Spillover of every dye (rows) into every detector (columns), diagonal 1.

    Returns
    -------
    ndarray, shape (17, 17)
        Row i is the signal seen in each detector per unit of signal of dye i in its own detector, as in the
        FCS $SPILLOVER keyword. Values below ``min_value`` are set to 0, as instrument software reports them.
    """
    n = len(DETECTORS)
    matrix = np.zeros((n, n))
    for i, dye in enumerate(DETECTORS):
        excitation = dict(zip(_LASERS, _EXCITATION[_dye_family(dye.channel)], strict=True))
        for j, detector in enumerate(DETECTORS):
            matrix[i, j] = excitation[detector.laser] * _emission(dye, detector.emission_nm)
        matrix[i] /= matrix[i, i]
    matrix[matrix < min_value] = 0.0
    return np.round(matrix, 4)


@dataclass(frozen=True)
class NoiseModel:
    """Detector noise: photon statistics (variance proportional to signal) plus electronic noise."""

    photon_variance_per_unit: float = 4.0
    electronic_sd: float = 25.0
    scatter_cv: float = 0.01


def detect_fluorescence(
    true_signal: np.ndarray, spillover: np.ndarray, rng: np.random.Generator, noise: NoiseModel, *, gains: np.ndarray
) -> np.ndarray:
    """Turn true dye signals into raw detector values.

    Parameters
    ----------
    true_signal
        (n_events, n_dyes) signal of each dye, in its own detector's units.
    spillover
        (n_dyes, n_detectors) spillover matrix.
    gains
        (n_detectors,) multiplicative detector gain (1.0 nominal; acquisition-day drift changes it).

    Returns
    -------
    ndarray, shape (n_events, n_detectors), float32
        Raw values with noise, clipped at the detector range.
    """
    raw = (true_signal @ spillover) * gains
    photon_sd = np.sqrt(np.clip(raw, 0.0, None) * noise.photon_variance_per_unit)
    raw += photon_sd * rng.standard_normal(raw.shape)
    raw += noise.electronic_sd * rng.standard_normal(raw.shape)
    np.minimum(raw, DETECTOR_RANGE - 1, out=raw)
    return raw.astype(np.float32)


def channel_keywords() -> dict[str, str]:
    """The per-channel keywords of every simulated file: $PnR (the detector range) and $PnV (voltage)."""
    keywords = {}
    for i, channel in enumerate(CHANNELS, start=1):
        keywords[f"$P{i}R"] = f"{int(DETECTOR_RANGE)}"
        keywords[f"$P{i}V"] = "350" if channel.startswith(("FSC", "SSC")) else "510"
    return keywords


def spillover_keyword(spillover: np.ndarray) -> str:
    """Format a spillover matrix as the FCS 3.1 $SPILLOVER value."""
    names = [d.channel for d in DETECTORS]
    values = ",".join(f"{v:.4g}" for v in spillover.ravel())
    return f"{len(names)},{','.join(names)},{values}"
