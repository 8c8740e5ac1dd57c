"""Figure geometry and fixed-point filling shared by rendering and labelling.

A figure is made of polygons and circles: a person of a torso, arms and legs (polygons)
and a head and hands (circles); a car of a body and a cabin plus two wheels; a dog of a
body, legs, tail, snout and ear plus a head; a ball of one circle. Drawing uses
fixed-point coordinates (OpenCV ``shift``) so that motion is sub-pixel smooth; the
labeller paints the same shapes without anti-aliasing to measure visibility, so
rendering only decorates inside these silhouettes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from qdtrack.data.synth.scene import (
    BallLook,
    BoxXyxy,
    CarLook,
    Color,
    DogLook,
    FigureLook,
    FigureState,
    Occluder,
    SceneState,
)

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


class Parts(Protocol):
    """The silhouette of a figure of any class: polygons and circles."""

    def polygons(self) -> list[np.ndarray]:
        """Filled (k, 2) polygons."""
        ...

    def circles(self) -> list[Circle]:
        """Filled (cx, cy, r) circles."""
        ...


@dataclass(frozen=True)
class CarParts:
    """Drawable parts of a car; ``windows`` lie inside ``cabin`` (drawing only)."""

    body: np.ndarray
    cabin: np.ndarray
    windows: tuple[np.ndarray, ...]
    wheels: tuple[Circle, ...]

    def polygons(self) -> list[np.ndarray]:
        """Body and cabin."""
        return [self.body, self.cabin]

    def circles(self) -> list[Circle]:
        """The wheels."""
        return list(self.wheels)


@dataclass(frozen=True)
class DogParts:
    """Drawable parts of a dog (legs listed far pair first)."""

    body: np.ndarray
    legs: tuple[np.ndarray, ...]
    tail: np.ndarray
    snout: np.ndarray
    ear: np.ndarray
    head: Circle

    def polygons(self) -> list[np.ndarray]:
        """Body, legs, tail, snout and ear."""
        return [self.body, *self.legs, self.tail, self.snout, self.ear]

    def circles(self) -> list[Circle]:
        """The head."""
        return [self.head]


@dataclass(frozen=True)
class BallParts:
    """A ball: one circle."""

    ball: Circle

    def polygons(self) -> list[np.ndarray]:
        """None."""
        return []

    def circles(self) -> list[Circle]:
        """The ball."""
        return [self.ball]


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


def ellipse_polygon(cx: float, cy: float, ax: float, ay: float, points: int = 20) -> np.ndarray:
    """An axis-aligned ellipse as a (points, 2) polygon (inscribed: inside the ellipse)."""
    angles = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    return np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], axis=1)


def figure_parts(fig: FigureState) -> FigureParts:
    """Head, torso, arms, hands and legs of a person figure in image coordinates."""
    if not isinstance(fig.look, FigureLook):
        raise TypeError(f"figure_parts draws persons, got a {type(fig.look).__name__}")
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


def car_parts(fig: FigureState) -> CarParts:
    """Body, cabin, windows and wheels of a car (side view, facing ``fig.facing``)."""
    look = fig.look
    if not isinstance(look, CarLook):
        raise TypeError(f"car_parts draws cars, got a {type(look).__name__}")
    h, foot, f = fig.height, fig.foot_y, fig.facing
    length = look.length * h

    def at(u: float, y: float) -> list[float]:
        # u runs along the car, positive towards its front.
        return [fig.foot_x + f * u, y]

    half = 0.5 * length
    top, bottom = foot - 0.62 * h, foot - 0.18 * h
    body = np.array(
        [
            at(-half, bottom),
            at(-half, top + 0.08 * h),
            at(-half + 0.05 * h, top),
            at(half - 0.25 * h, top + 0.04 * h),
            at(half, top + 0.2 * h),
            at(half, bottom),
        ]
    )
    # The cabin sits towards the rear; its rear pillar leans half as much as the windscreen.
    rear, front = -half + 0.1 * length, -half + (0.1 + look.cabin) * length
    roof, slope = foot - h, 0.22 * h
    cabin = np.array(
        [
            at(rear, top + 1.0),  # one pixel into the body: no seam
            at(rear + 0.5 * slope, roof),
            at(front - slope, roof),
            at(front, top + 1.0),
        ]
    )

    def rear_edge(y: float) -> float:
        return rear + 0.5 * slope * (top - y) / (top - roof)

    def front_edge(y: float) -> float:
        return front - slope * (top - y) / (top - roof)

    inset, pillar = 0.07 * h, 0.5 * (rear + front)
    glass_top, glass_bottom = roof + inset, top - 0.03 * h
    rear_window = np.array(
        [
            at(rear_edge(glass_top) + inset, glass_top),
            at(pillar - inset / 2, glass_top),
            at(pillar - inset / 2, glass_bottom),
            at(rear_edge(glass_bottom) + inset, glass_bottom),
        ]
    )
    front_window = np.array(
        [
            at(pillar + inset / 2, glass_top),
            at(front_edge(glass_top) - inset, glass_top),
            at(front_edge(glass_bottom) - inset, glass_bottom),
            at(pillar + inset / 2, glass_bottom),
        ]
    )
    windows = (rear_window, front_window)
    radius = 0.2 * h
    wheels = tuple(
        (fig.foot_x + f * u, foot - radius, radius) for u in (-0.3 * length, 0.3 * length)
    )
    return CarParts(body, cabin, windows, wheels)


def dog_parts(fig: FigureState) -> DogParts:
    """Body, legs, tail, snout, ear and head of a dog (side view, facing ``fig.facing``)."""
    look = fig.look
    if not isinstance(look, DogLook):
        raise TypeError(f"dog_parts draws dogs, got a {type(look).__name__}")
    h, foot, f = fig.height, fig.foot_y, fig.facing
    length = look.length * h
    swing = math.sin(fig.phase)

    def x_at(u: float) -> float:
        return fig.foot_x + f * u

    body_u, body_y = -0.04 * length, foot - 0.55 * h
    body = ellipse_polygon(x_at(body_u), body_y, 0.33 * length, 0.17 * h)
    legs = []
    leg_top, leg_half = foot - 0.5 * h, 0.05 * h
    # Far pair first (drawn darker, behind); each pair swings in opposite phase.
    for u, side in (
        (0.2 * length, -1.0),
        (-0.25 * length, 1.0),
        (0.2 * length, 1.0),
        (-0.25 * length, -1.0),
    ):
        reach = side * swing * 0.12 * h
        legs.append(_segment_quad(x_at(u), leg_top, x_at(u + reach), foot - leg_half, leg_half))
    tail_u = body_u - 0.3 * length
    wag = 0.08 * h * math.sin(2.0 * fig.phase)
    tail = _segment_quad(
        x_at(tail_u), foot - 0.62 * h, x_at(tail_u - 0.18 * h), foot - 0.88 * h + wag, 0.035 * h
    )
    head_u, head_y, head_r = 0.33 * length, foot - 0.8 * h, 0.15 * h
    snout = np.array(
        [
            [x_at(head_u), head_y - 0.02 * h],
            [x_at(head_u + 0.26 * h), head_y + 0.02 * h],
            [x_at(head_u + 0.26 * h), head_y + 0.1 * h],
            [x_at(head_u), head_y + 0.12 * h],
        ]
    )
    ear_tip = (-0.12 * h, head_y - 0.24 * h) if look.ear_up else (-0.16 * h, head_y + 0.12 * h)
    ear = np.array(
        [
            [x_at(head_u - 0.02 * h), head_y - 0.13 * h],
            [x_at(head_u + ear_tip[0]), ear_tip[1]],
            [x_at(head_u - 0.14 * h), head_y - 0.04 * h],
        ]
    )
    return DogParts(body, tuple(legs), tail, snout, ear, (x_at(head_u), head_y, head_r))


def ball_elevation(fig: FigureState) -> float:
    """Height of a ball's lowest point above the ground, in pixels."""
    look = fig.look
    if not isinstance(look, BallLook):
        raise TypeError(f"ball_elevation needs a ball, got a {type(look).__name__}")
    return look.bounce * fig.height * abs(math.sin(look.bounce_rate * fig.phase))


def ball_parts(fig: FigureState) -> BallParts:
    """The ball's circle, lifted by its bounce."""
    radius = 0.5 * fig.height
    return BallParts((fig.foot_x, fig.foot_y - ball_elevation(fig) - radius, radius))


def object_parts(fig: FigureState) -> Parts:
    """The parts of a figure of any class."""
    if isinstance(fig.look, CarLook):
        return car_parts(fig)
    if isinstance(fig.look, DogLook):
        return dog_parts(fig)
    if isinstance(fig.look, BallLook):
        return ball_parts(fig)
    return figure_parts(fig)


def parts_box(parts: Parts) -> BoxXyxy:
    """Tight box around all parts."""
    polygons = parts.polygons()
    circles = np.array(parts.circles()).reshape(-1, 3)
    pts = np.concatenate([*polygons, circles[:, :2] - circles[:, 2:]])
    far = np.concatenate([*polygons, circles[:, :2] + circles[:, 2:]])
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(far[:, 0].max()),
        float(far[:, 1].max()),
    )


def item_box(item: Item) -> BoxXyxy:
    """Box of a figure's parts or of an occluder."""
    return item.box_xyxy if isinstance(item, Occluder) else parts_box(object_parts(item))


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


def fill_parts(canvas: np.ndarray, parts: Parts, origin: tuple[float, float], value: int) -> None:
    """Paint the silhouette of a figure's parts with ``value`` (no anti-aliasing)."""
    polygons = parts.polygons()
    if polygons:
        fill_polygons(canvas, polygons, value, origin, cv2.LINE_8)
    for circle in parts.circles():
        fill_circle(canvas, circle, value, origin, cv2.LINE_8)


def fill_silhouette(
    canvas: np.ndarray, item: Item, origin: tuple[float, float], value: int
) -> None:
    """Paint the silhouette of a figure or occluder with ``value`` (no anti-aliasing)."""
    if isinstance(item, Occluder):
        fill_polygons(canvas, [rect_quad(item.box_xyxy)], value, origin, cv2.LINE_8)
    else:
        fill_parts(canvas, object_parts(item), origin, value)


__all__ = [
    "SHIFT",
    "BallParts",
    "CarParts",
    "Circle",
    "DogParts",
    "FigureParts",
    "Item",
    "Parts",
    "ball_elevation",
    "ball_parts",
    "car_parts",
    "depth_order",
    "dog_parts",
    "ellipse_polygon",
    "figure_parts",
    "fill_circle",
    "fill_parts",
    "fill_polygons",
    "fill_silhouette",
    "fixed_length",
    "fixed_point",
    "item_box",
    "object_parts",
    "parts_box",
    "rect_quad",
]
