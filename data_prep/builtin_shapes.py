"""Silhouettes of the built-in dataset as signed distances in the shape's own frame (radius about 1).

Negative inside, positive outside, exact on and near the edge, which is all the antialiasing ramp needs. Every
shape covers a similar area (about 2.6 to 3.2 square units) so no kind is much smaller than the others.
"""

from __future__ import annotations

import numpy as np

SHAPE_KINDS = ("disc", "square", "triangle", "star", "cross")

_SQUARE_HALF_SIDE = 0.85
_TRIANGLE_INRADIUS = 0.78  # circumradius 1.56
_STAR_OUTER, _STAR_INNER = 1.45, 0.62
_CROSS_HALF_LENGTH, _CROSS_HALF_WIDTH = 1.15, 0.38


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v) - 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - _SQUARE_HALF_SIDE


def _fold_angle(u: np.ndarray, v: np.ndarray, sides: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius and the angle folded into [0, π/sides] by the shape's rotational and mirror symmetry."""
    wedge = 2 * np.pi / sides
    angle = np.arctan2(v, u)
    folded = np.abs(angle - wedge * np.rint(angle / wedge))
    return np.sqrt(u * u + v * v), folded


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, an edge normal along +u: the distance to the nearest edge line is r·cos(folded angle) − inradius.
    radius, folded = _fold_angle(u, v, 3)
    return radius * np.cos(folded) - _TRIANGLE_INRADIUS


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Five points, a tip along +u. In the folded wedge the boundary is the segment from the tip (R, 0) to the inner
    # corner at angle π/5, and the star is exactly the origin's side of the line through them.
    radius, folded = _fold_angle(u, v, 5)
    corner_x, corner_y = _STAR_INNER * np.cos(np.pi / 5), _STAR_INNER * np.sin(np.pi / 5)
    edge_x, edge_y = corner_x - _STAR_OUTER, corner_y
    length = np.hypot(edge_x, edge_y)
    normal_x, normal_y = float(edge_y / length), float(-edge_x / length)  # points away from the origin
    px, py = radius * np.cos(folded), radius * np.sin(folded)
    return (px - _STAR_OUTER) * normal_x + py * normal_y


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    horizontal = np.maximum(au - _CROSS_HALF_LENGTH, av - _CROSS_HALF_WIDTH)
    vertical = np.maximum(au - _CROSS_HALF_WIDTH, av - _CROSS_HALF_LENGTH)
    return np.minimum(horizontal, vertical)


_DISTANCES = (_disc, _square, _triangle, _star, _cross)


def shape_distance(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to the edge of SHAPE_KINDS[kind] at points (u, v) of its own frame."""
    return _DISTANCES[kind](u, v)
