"""Figure geometry and fixed-point filling shared by rendering and labelling.

A figure is made of polygons (torso, arms, legs) and circles (head, hands). Drawing uses
fixed-point coordinates (OpenCV ``shift``) so that motion is sub-pixel smooth; the
labeller paints the same shapes without anti-aliasing to measure visibility.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from qdtrack.data.synth.scene import BoxXyxy, Color, FigureState, Occluder, SceneState

# Fractional bits of the fixed-point coordinates passed to OpenCV.
SHIFT = 4
_ONE = 1 << SHIFT

Circle = tuple[float, float, float]  # (cx, cy, r)
Item = FigureState | Occluder


@dataclass(frozen=True)
class FigureParts:
    """Drawable parts of a figure: circles (cx, cy, r) and (4, 2) polygons."""

    head: Circle
    hands: tuple[Circle, ...]
    torso: BoxXyxy
    arms: tuple[np.ndarray, ...]
    legs: tuple[np.ndarray, ...]

    def polygons(self) -> list[np.ndarray]:
        """Torso, arms and legs as polygons."""
        return [rect_quad(self.torso), *self.arms, *self.legs]

    def circles(self) -> list[Circle]:
        """Head and hands as circles."""
        return [self.head, *self.hands]


def rect_quad(box: BoxXyxy) -> np.ndarray:
    """The corners of an axis-aligned box as a (4, 2) float64 polygon."""
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _segment_quad(x0: float, y0: float, x1: float, y1: float, half: float) -> np.ndarray:
    """A thick segment as a 4-point polygon."""
    dx, dy = x1 - x0, y1 - y0
    norm = math.hypot(dx, dy) or 1.0
    px, py = -dy / norm * half, dx / norm * half
    return np.array(
        [[x0 + px, y0 + py], [x1 + px, y1 + py], [x1 - px, y1 - py], [x0 - px, y0 - py]]
    )


def figure_parts(fig: FigureState) -> FigureParts:
    """Head, torso, arms, hands and legs of a figure in image coordinates."""
    h, x, foot = fig.height, fig.foot_x, fig.foot_y
    top = foot - h
    swing = math.sin(fig.phase)
    half_torso = fig.look.build * h
    head_r = 0.085 * h
    shoulder_y, hip_y = top + 0.19 * h, top + 0.55 * h
    arm_half, leg_half = 0.03 * h, 0.045 * h
    arms, hands = [], []
    for side in (-1.0, 1.0):
        sx = x + side * (half_torso + 0.4 * arm_half)
        hx = sx + side * 0.02 * h + side * swing * 0.07 * h
        hy = top + 0.52 * h
        arms.append(_segment_quad(sx, shoulder_y, hx, hy, arm_half))
        hands.append((hx, hy + 0.01 * h, 0.028 * h))
    legs = []
    for side in (-1.0, 1.0):
        hx = x + side * 0.06 * h
        fx = hx + side * swing * 0.11 * h
        legs.append(_segment_quad(hx, hip_y, fx, foot, leg_half))
    return FigureParts(
        head=(x, top + head_r, head_r),
        hands=tuple(hands),
        torso=(x - half_torso, shoulder_y - 0.02 * h, x + half_torso, hip_y + 0.03 * h),
        arms=tuple(arms),
        legs=tuple(legs),
    )


def parts_box(parts: FigureParts) -> BoxXyxy:
    """Tight box around all parts."""
    pts = np.concatenate(parts.polygons())
    circles = np.array(parts.circles())
    x0 = min(pts[:, 0].min(), (circles[:, 0] - circles[:, 2]).min())
    y0 = min(pts[:, 1].min(), (circles[:, 1] - circles[:, 2]).min())
    x1 = max(pts[:, 0].max(), (circles[:, 0] + circles[:, 2]).max())
    y1 = max(pts[:, 1].max(), (circles[:, 1] + circles[:, 2]).max())
    return (float(x0), float(y0), float(x1), float(y1))


def item_box(item: Item) -> BoxXyxy:
    """Box of a figure's parts or of an occluder."""
    return item.box_xyxy if isinstance(item, Occluder) else parts_box(figure_parts(item))


def depth_order(scene: SceneState) -> list[Item]:
    """Items far to near (feet higher in the image are further away)."""
    items: list[Item] = [*scene.figures, *scene.occluders]

    def key(item: Item) -> tuple[float, int]:
        if isinstance(item, Occluder):
            return (item.depth_y, -1)
        return (item.foot_y, item.track_id)

    return sorted(items, key=key)


def fixed_point(x: float, y: float, origin: tuple[float, float] = (0.0, 0.0)) -> tuple[int, int]:
    """A float point as an OpenCV fixed-point point, relative to ``origin``."""
    return (round((x - origin[0]) * _ONE), round((y - origin[1]) * _ONE))


def fixed_length(length: float) -> int:
    """A float radius or half-axis as a fixed-point length of at least one unit."""
    return max(round(length * _ONE), 1)


def _fixed_points(points: np.ndarray, origin: tuple[float, float]) -> np.ndarray:
    """Float points -> OpenCV fixed-point int32 points, relative to ``origin``."""
    shifted = (np.asarray(points, np.float64) - np.asarray(origin)) * _ONE
    return np.round(shifted).astype(np.int32).reshape(-1, 1, 2)


def fill_polygons(
    img: np.ndarray,
    polygons: Sequence[np.ndarray],
    color: Color | int,
    origin: tuple[float, float] = (0.0, 0.0),
    line_type: int = cv2.LINE_AA,
) -> None:
    """Fill ``polygons`` (float (k, 2) points) in one ``cv2.fillPoly`` call."""
    fixed = [_fixed_points(p, origin) for p in polygons]
    cv2.fillPoly(img, fixed, color, line_type, SHIFT)


def fill_circle(
    img: np.ndarray,
    circle: Circle,
    color: Color | int,
    origin: tuple[float, float] = (0.0, 0.0),
    line_type: int = cv2.LINE_AA,
) -> None:
    """Fill a (cx, cy, r) circle."""
    cx, cy, r = circle
    cv2.circle(img, fixed_point(cx, cy, origin), fixed_length(r), color, -1, line_type, SHIFT)


def fill_parts(
    canvas: np.ndarray, parts: FigureParts, origin: tuple[float, float], value: int
) -> None:
    """Paint the silhouette of a figure's parts with ``value`` (no anti-aliasing)."""
    fill_polygons(canvas, parts.polygons(), value, origin, cv2.LINE_8)
    for circle in parts.circles():
        fill_circle(canvas, circle, value, origin, cv2.LINE_8)


def fill_silhouette(
    canvas: np.ndarray, item: Item, origin: tuple[float, float], value: int
) -> None:
    """Paint the silhouette of a figure or occluder with ``value`` (no anti-aliasing)."""
    if isinstance(item, Occluder):
        fill_polygons(canvas, [rect_quad(item.box_xyxy)], value, origin, cv2.LINE_8)
    else:
        fill_parts(canvas, figure_parts(item), origin, value)


__all__ = [
    "SHIFT",
    "Circle",
    "FigureParts",
    "Item",
    "depth_order",
    "figure_parts",
    "fill_circle",
    "fill_parts",
    "fill_polygons",
    "fill_silhouette",
    "fixed_length",
    "fixed_point",
    "item_box",
    "parts_box",
    "rect_quad",
]
