"""Static gate geometry (GatingML 2.0 shapes) evaluated on already compensated and transformed values.

Every function is pure and vectorised over events: values are (n_events, n_dims), one column per gate dimension
in the gate's order; results are (n_events,) bool. Boundary rules follow GatingML 2.0 as flowkit (1.x) implements
them, so that results agree with it event by event: rectangles, ranges and quadrants ``min <= x < max`` (a
missing bound open); polygons by winding number (:func:`polygon_winding_counts`), outside their bounding box
outside, inside at an odd count; ellipsoids by squared Mahalanobis distance ``<= distance_square``. NaN values are
outside every shape (inside a complement), except in a rectangle dimension with neither bound (not tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BOOLEAN_OPERATIONS = ("and", "or", "not")


def _as_events(values: np.ndarray, n_dims: int | None = None, what: str = "values") -> np.ndarray:
    """Values as a 2-D float64 array (n_events, n_dims); a 1-D array is one dimension."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"{what} must have shape (n_events, n_dims), not {array.shape}")
    if n_dims is not None and array.shape[1] != n_dims:
        raise ValueError(f"{what} has {array.shape[1]} dimensions, the gate has {n_dims}")
    return array


def in_rectangle(values: np.ndarray, mins: Sequence[float | None], maxs: Sequence[float | None],
                 complement: bool = False) -> np.ndarray:
    """Events inside a (hyper-)rectangle or range: ``min <= x < max`` in every dimension.

    Parameters
    ----------
    values
        (n_events, n_dims) values (a 1-D array is one dimension).
    mins, maxs
        (n_dims,) bounds; None is an open bound (at least one of the two should be given per dimension).
    complement
        Return the events outside instead.

    Returns
    -------
    ndarray
        (n_events,) bool.
    """
    if len(mins) != len(maxs):
        raise ValueError(f"a rectangle needs as many minima as maxima ({len(mins)} != {len(maxs)})")
    events = _as_events(values, len(mins))
    inside = np.ones(events.shape[0], dtype=bool)
    for j, (low, high) in enumerate(zip(mins, maxs)):
        if low is not None:
            inside &= events[:, j] >= float(low)
        if high is not None:
            inside &= events[:, j] < float(high)
    return ~inside if complement else inside


def polygon_winding_counts(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Winding count of every point around a closed polygon (0 outside its bounding box).

    Parameters
    ----------
    points
        (n_events, 2) values.
    vertices
        (n_vertices, 2) polygon vertices, in order; the last connects back to the first.

    Returns
    -------
    ndarray
        (n_events,) int winding counts (+1 per upward edge the point lies strictly left of, -1 per downward edge
        it lies strictly right of).

    Crossing rules (Dan Sunday's, as flowkit): an edge counts from its lower end inclusive to its upper end
    exclusive; the point must lie strictly left of an upward edge or strictly right of a downward edge.
    """
    pts = _as_events(points, 2, "points")
    verts = _as_events(vertices, 2, "vertices")
    if verts.shape[0] < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, not {verts.shape[0]}")
    x, y = pts[:, 0], pts[:, 1]
    counts = np.zeros(pts.shape[0], dtype=np.int64)
    in_box = ~((x < verts[:, 0].min()) | (x > verts[:, 0].max()) | (y < verts[:, 1].min()) | (y > verts[:, 1].max()))
    for (ax, ay), (bx, by) in zip(verts, np.roll(verts, -1, axis=0)):
        is_left = (bx - ax) * (y - ay) - (x - ax) * (by - ay)
        upward = (ay <= y) & (y < by) & (is_left > 0)
        downward = ~(ay <= y) & (by <= y) & (is_left < 0)
        counts += upward.astype(np.int64) - downward.astype(np.int64)
    return np.where(in_box, counts, 0)


def in_polygon(points: np.ndarray, vertices: np.ndarray, complement: bool = False) -> np.ndarray:
    """Events inside a polygon (odd winding count; self-crossing polygons leave even-count regions as holes).

    Parameters
    ----------
    points
        (n_events, 2) values of the gate's two dimensions.
    vertices
        (n_vertices, 2) vertices in order.
    complement
        Return the events outside instead.

    Returns
    -------
    ndarray
        (n_events,) bool.
    """
    inside = polygon_winding_counts(points, vertices) % 2 != 0
    return ~inside if complement else inside


def mahalanobis_squared(points: np.ndarray, mean: Sequence[float], covariance: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of every point from ``mean`` under ``covariance``.

    Parameters
    ----------
    points
        (n_events, n_dims) values.
    mean
        (n_dims,) centre.
    covariance
        (n_dims, n_dims) covariance matrix (invertible).

    Returns
    -------
    ndarray
        (n_events,) float distances squared.
    """
    centre = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (centre.size, centre.size):
        raise ValueError(f"the covariance matrix must be {centre.size} x {centre.size}, not {cov.shape}")
    translated = _as_events(points, centre.size, "points") - centre
    return (np.dot(translated, np.linalg.inv(cov)) * translated).sum(axis=1)


def in_ellipsoid(points: np.ndarray, mean: Sequence[float], covariance: np.ndarray, distance_square: float,
                 *, complement: bool = False) -> np.ndarray:
    """Events inside an ellipse / ellipsoid: squared Mahalanobis distance ``<= distance_square``.

    Parameters
    ----------
    points
        (n_events, n_dims) values, n_dims >= 2.
    mean
        (n_dims,) centre.
    covariance
        (n_dims, n_dims) covariance matrix.
    distance_square
        Squared Mahalanobis distance of the boundary.
    complement
        Return the events outside instead.

    Returns
    -------
    ndarray
        (n_events,) bool.
    """
    inside = mahalanobis_squared(points, mean, covariance) <= float(distance_square)
    return ~inside if complement else inside


def divider_range(divider_values: Sequence[float], location: float) -> tuple[float | None, float | None]:
    """The interval between a quadrant divider's values that contains ``location`` (GatingML position).

    Returns
    -------
    tuple
        (min, max): the largest divider value <= location (None if none) and the smallest value > location
        (None if none).
    """
    low, high = None, None
    for value in sorted(float(v) for v in divider_values):
        if value > location:
            high = value
            break
        low = value
    return low, high


def quadrant_masks(values: np.ndarray, quadrants: Mapping[str, Sequence[tuple[float | None, float | None]]]
                   ) -> dict[str, np.ndarray]:
    """Membership of every quadrant of a quadrant gate.

    Parameters
    ----------
    values
        (n_events, n_dividers) values, one column per divider dimension.
    quadrants
        quadrant id -> (min, max) per divider column (from :func:`divider_range`; (None, None) leaves a divider
        unused by that quadrant).

    Returns
    -------
    dict
        quadrant id -> (n_events,) bool; ``min <= x < max`` in every divider dimension.
    """
    masks = {}
    for quadrant_id, ranges in quadrants.items():
        mins = [r[0] for r in ranges]
        maxs = [r[1] for r in ranges]
        masks[quadrant_id] = in_rectangle(values, mins, maxs)
    return masks


def combine_boolean(operation: str, masks: Sequence[np.ndarray], complements: Sequence[bool] | None = None
                    ) -> np.ndarray:
    """A Boolean gate: AND / OR of two or more operands, or NOT of one; each operand may be used as complement.

    Parameters
    ----------
    operation
        'and', 'or' or 'not' (case-insensitive).
    masks
        (n_events,) bool membership of every referenced gate.
    complements
        Per operand, use its complement (GatingML ``use-as-complement``); default none.

    Returns
    -------
    ndarray
        (n_events,) bool.
    """
    op = operation.lower()
    if op not in BOOLEAN_OPERATIONS:
        raise ValueError(f"Boolean operation must be one of {BOOLEAN_OPERATIONS}, not {operation!r}")
    if not masks:
        raise ValueError("a Boolean gate needs at least one operand")
    complements = [False] * len(masks) if complements is None else list(complements)
    if len(complements) != len(masks):
        raise ValueError(f"{len(masks)} operands but {len(complements)} complement flags")
    operands = [~np.asarray(m, dtype=bool) if c else np.asarray(m, dtype=bool) for m, c in zip(masks, complements)]
    if op == "not":
        if len(operands) != 1:
            raise ValueError(f"a 'not' gate takes exactly one operand, not {len(operands)}")
        return ~operands[0]
    if len(operands) < 2:
        raise ValueError(f"an '{op}' gate takes two or more operands, not {len(operands)}")
    return np.logical_and.reduce(operands) if op == "and" else np.logical_or.reduce(operands)


EITHER_FAR = 10.0  # gating units beyond each cut that the polygon of an 'either cut' gate reaches: beyond any
# event, yet finite when a FlowJo workspace maps the vertices back to linear values (1e3 overflowed to infinity)


def either_cut_polygon(x_cut: dict, y_cut: dict) -> list[list[float]]:
    """Vertices of the region passing either cut (``{keep: above | below, cut}`` on x and y): an L-shaped
    polygon, the plane (to EITHER_FAR beyond the cuts) without the quadrant that fails both."""
    a, b = float(x_cut["cut"]), float(y_cut["cut"])
    sx = 1.0 if x_cut["keep"] == "above" else -1.0  # the direction that passes
    sy = 1.0 if y_cut["keep"] == "above" else -1.0
    x_fail, x_pass = a - sx * EITHER_FAR, a + sx * EITHER_FAR
    y_fail, y_pass = b - sy * EITHER_FAR, b + sy * EITHER_FAR
    vertices = [(x_fail, b), (a, b), (a, y_fail), (x_pass, y_fail), (x_pass, y_pass), (x_fail, y_pass)]
    return [list(v) for v in vertices]
