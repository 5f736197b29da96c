"""Transforms for display and gating: logicle with W estimated from the data, arcsinh, linear scatter.

All are flowkit transforms (GatingML 2.0 definitions), so realised gates can be exported in the same scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import flowkit as fk


def estimate_logicle_w(values: np.ndarray, t: float, m: float = 4.5, quantile: float = 0.05) -> float:
    """Linearisation width W from the data, as flowCore's estimateLogicle.

    W = (M - log10(T / |r|)) / 2 with r the ``quantile`` of the negative values; 0 when there are no
    negative values, and never below 0 or above M / 2.

    Parameters
    ----------
    values
        (n_events,) compensated values of one channel.
    t
        Top of scale ($PnR).
    """
    negative = values[values < 0]
    if negative.size == 0:
        return 0.0
    r = abs(float(np.quantile(negative, quantile))) + np.finfo(float).eps
    w = (m - np.log10(t / r)) / 2
    return float(np.clip(w, 0.0, m / 2 - 1e-6))


def fluorescence_transform(values: np.ndarray, t: float, settings: dict) -> tuple[fk.transforms.Transform, dict]:
    """The transform of one fluorescence channel and its parameters (for the record).

    ``settings`` is the workflow config's ``transform`` section: ``fluorescence`` ('logicle' or 'asinh'),
    ``logicle_m``, ``logicle_a``, ``logicle_w`` ('estimate' or a number) and ``asinh_cofactor``.
    """
    kind = settings.get("fluorescence", "logicle")
    if kind == "logicle":
        m, a = float(settings.get("logicle_m", 4.5)), float(settings.get("logicle_a", 0.0))
        w_setting = settings.get("logicle_w", "estimate")
        w = estimate_logicle_w(values, t, m) if w_setting == "estimate" else float(w_setting)
        return fk.transforms.LogicleTransform(param_t=t, param_w=w, param_m=m, param_a=a), \
            {"transform": "logicle", "t": t, "w": w, "m": m, "a": a}
    if kind == "asinh":
        cofactor = float(settings.get("asinh_cofactor", 150.0))
        # GatingML asinh(x * sinh(M ln10) / T) / (M ln10) equals asinh(x / cofactor) up to scale when
        # sinh(M ln10) = T / cofactor.
        m = float(np.arcsinh(t / cofactor) / np.log(10))
        return fk.transforms.AsinhTransform(param_t=t, param_m=m, param_a=0.0), \
            {"transform": "asinh", "t": t, "m": m, "a": 0.0, "cofactor": cofactor}
    raise ValueError(f"transform.fluorescence must be 'logicle' or 'asinh', not {kind!r}")


def scatter_transform(t: float) -> tuple[fk.transforms.Transform, dict]:
    """Scatter stays linear, scaled to [0, 1] of the detector range."""
    return fk.transforms.LinearTransform(param_t=t, param_a=0.0), {"transform": "linear", "t": t, "a": 0.0}


def transform_from_params(params: dict) -> fk.transforms.Transform:
    """Rebuild a channel's transform from the parameters recorded in the events' var table."""
    kind = params["transform"]
    if kind == "linear":
        return fk.transforms.LinearTransform(param_t=params["t"], param_a=params["a"])
    if kind == "logicle":
        return fk.transforms.LogicleTransform(param_t=params["t"], param_w=params["w"], param_m=params["m"],
                                              param_a=params["a"])
    if kind == "asinh":
        return fk.transforms.AsinhTransform(param_t=params["t"], param_m=params["m"], param_a=params["a"])
    raise ValueError(f"unknown transform {kind!r}")


def channel_transform(params: dict) -> Callable[[np.ndarray, np.ndarray], None]:
    """The transform of one channel as a function ``apply_into(values, out)``: 1-D float64 values (may be a
    strided column) into a 1-D output of the same length (float32 or float64, may be strided), with flowkit's
    definitions.

    Logicle uses :class:`cytotrial.preprocess.logicle.FastLogicle`, a table of flowutils' own values that gives the same
    float32 results faster (benchmarks/results/logicle_speed.json); linear and arcsinh use flowkit's transforms."""
    if params["transform"] == "logicle":
        from .logicle import FastLogicle  # here, not at the top: it imports numba, which jobs without logicle skip

        return FastLogicle(params["t"], params["w"], params["m"], params["a"]).apply_into
    if params["transform"] == "linear":  # flowkit's LinearTransform: (x + a) / (t + a), the same operations
        shift, scale = float(params["a"]), float(params["t"]) + float(params["a"])

        def apply_linear(values: np.ndarray, out: np.ndarray) -> None:
            np.divide(values + shift, scale, out=out)

        return apply_linear
    xform = transform_from_params(params)

    def apply_into(values: np.ndarray, out: np.ndarray) -> None:
        out[:] = xform.apply(values.reshape(-1, 1)).ravel()

    return apply_into


def inverse_transform(params: dict, values: np.ndarray) -> np.ndarray:
    """Values in gating units back to original (linear) units."""
    return transform_from_params(params).inverse(np.asarray(values, dtype=float).reshape(-1, 1)).ravel()


def pooled_transform_parameters(values_by_marker: dict[str, np.ndarray], ranges: dict[str, float],
                                settings: dict) -> dict[str, dict]:
    """Transform parameters of every fluorescence marker, fitted on events pooled over a batch of files.

    Parameters
    ----------
    values_by_marker
        marker -> (n_events,) compensated values pooled over the batch.
    ranges
        marker -> top of scale ($PnR).

    Returns
    -------
    dict
        marker -> transform parameters (as recorded in the events' var table).
    """
    return {marker: fluorescence_transform(values, ranges[marker], settings)[1]
            for marker, values in values_by_marker.items()}
