"""Acquisition over time: event arrival times and the disturbances an event-QC step must find.

Some samples are acquired with a disturbance, as happens on real cytometers:

``clog``
    A partial clog: for a stretch of the run the event rate drops to ~15 % and the light signals are weaker
    (the stream is off-centre).
``signal_shift``
    A stretch where fluorescence reads low (a bubble or a laser fluctuation) at a normal event rate.

Which samples are disturbed, how and when is drawn from the seed; the events inside the stretch are the ground
truth of the anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_RATE_PER_S = 2500.0
ANOMALY_KINDS = ("clog", "signal_shift")


@dataclass(frozen=True)
class Anomaly:
    """A disturbed stretch of one acquisition, as a fraction of the run's duration."""

    kind: str
    start_fraction: float
    length_fraction: float
    rate_factor: float
    signal_factor: float


def draw_anomaly(rng: np.random.Generator, probability: float) -> Anomaly | None:
    """Whether a sample's acquisition is disturbed, and how."""
    if rng.random() >= probability:
        return None
    kind = ANOMALY_KINDS[int(rng.integers(len(ANOMALY_KINDS)))]
    start, length = float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.06, 0.12))
    if kind == "clog":
        return Anomaly(kind, start, length, rate_factor=0.15, signal_factor=0.6)
    return Anomaly(kind, start, length, rate_factor=1.0, signal_factor=0.7)


def arrival_times(n_events: int, rng: np.random.Generator) -> np.ndarray:
    """Event times in seconds for a steady stream (Poisson process)."""
    return np.cumsum(rng.exponential(1 / EVENT_RATE_PER_S, n_events))


def apply_anomaly(seconds: np.ndarray, anomaly: Anomaly | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Disturb a steady acquisition.

    Parameters
    ----------
    seconds
        (n_events,) steady arrival times, increasing.

    Returns
    -------
    dict of arrays
        ``keep`` (n_events,) bool: events recorded (a clog loses most events of its stretch, which keeps its
        length in time); then, for the recorded events only: ``seconds``; ``fluorescence_factor`` and
        ``scatter_factor``, multipliers of the light signals (1 outside the stretch); ``in_anomaly``, events
        inside the disturbed stretch, the truth an event QC is measured against.
    """
    n = seconds.size
    if anomaly is None:
        ones = np.ones(n)
        return {"keep": np.ones(n, bool), "seconds": seconds, "fluorescence_factor": ones, "scatter_factor": ones,
                "in_anomaly": np.zeros(n, bool)}
    duration = seconds[-1]
    start = anomaly.start_fraction * duration
    end = start + anomaly.length_fraction * duration
    inside = (seconds >= start) & (seconds < end)
    keep = ~inside | (rng.random(n) < anomaly.rate_factor)
    in_anomaly = inside[keep]
    factor = np.where(in_anomaly, anomaly.signal_factor, 1.0)
    return {"keep": keep, "seconds": seconds[keep], "fluorescence_factor": factor,
            "scatter_factor": factor if anomaly.kind == "clog" else np.ones(in_anomaly.size),
            "in_anomaly": in_anomaly}
