"""Pixels of a synthetic scene: textured backgrounds, figures of every class, occluders.

Each class is drawn from its parts (:mod:`~qdtrack.data.synth.geometry`); details such as
windows, stripes, spots and ball patterns stay inside the silhouette the labeller uses.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from qdtrack.data.synth.geometry import (
    SHIFT,
    Circle,
    ball_elevation,
    ball_parts,
    car_parts,
    depth_order,
    dog_parts,
    ellipse_polygon,
    figure_parts,
    fill_circle,
    fill_polygons,
    fixed_length,
    fixed_point,
    rect_quad,
)
from qdtrack.data.synth.scene import (
    HORIZON,
    BallLook,
    BoxXyxy,
    CarLook,
    Color,
    DogLook,
    FigureLook,
    FigureState,
    Occluder,
    SceneState,
    hsv_bgr,
    random_look,
)

_SHOE = (25, 25, 30)
_POSTER_FRAME = (40, 40, 40)
_TYRE = (30, 30, 32)
_HUB = (175, 175, 180)
_HEADLIGHT = (170, 235, 250)
_TAIL_LIGHT = (40, 40, 200)
_DARK = (20, 20, 25)  # dog's eye and nose


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured street-like background: a facade above the horizon, paving below.

    Returns:
        (height, width, 3) uint8 BGR image.
    """
    horizon = round(HORIZON * height) + int(rng.integers(-4, 5))
    img = np.zeros((height, width, 3), np.float32)
    wall = np.array(hsv_bgr(rng.random(), rng.uniform(0.1, 0.35), rng.uniform(0.55, 0.8)))
    ground = np.array(hsv_bgr(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.45, 0.65)))
    img[:horizon] = wall
    rows = np.linspace(0.75, 1.1, height - horizon, dtype=np.float32)[:, None, None]
    img[horizon:] = ground * rows
    # Facade: windows and doors.
    x = int(rng.integers(0, 20))
    while x < width:
        w = int(rng.integers(14, 34))
        h = int(rng.integers(max(horizon // 3, 4), max(horizon - 2, 5)))
        shade = float(rng.uniform(0.35, 0.7))
        cv2.rectangle(img, (x, horizon - h), (x + w, horizon - 2), (wall * shade).tolist(), -1)
        x += w + int(rng.integers(10, 40))
    # Paving joints: rows closer together towards the horizon, lines converging on it.
    vanish_x = width * float(rng.uniform(0.3, 0.7))
    line = (ground * 0.7).tolist()
    for k in range(1, 14):
        y = horizon + (height - horizon) * (k / 13) ** 1.8
        cv2.line(img, (0, round(y)), (width, round(y)), line, 1)
    for k in range(-12, 13):
        cv2.line(
            img, (round(vanish_x), horizon), (round(vanish_x + k * width / 5), height), line, 1
        )
    # Low-frequency blotches and fine grain.
    coarse = rng.normal(0.0, 1.0, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    coarse[..., 1:] = 0.3 * coarse[..., 1:] + 0.7 * coarse[..., :1]  # mostly brightness
    img += 12.0 * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0.0, 4.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_shirt(img: np.ndarray, look: FigureLook, torso: BoxXyxy) -> None:
    """Fill the torso with the shirt colour and its accent pattern."""
    x0, y0, x1, y1 = torso
    fill_polygons(img, [rect_quad(torso)], look.shirt)
    stripes: list[BoxXyxy] = []
    if look.pattern == "hstripes":
        band = max((y1 - y0) / 7.0, 1.0)
        stripes = [(x0, y0 + k * band, x1, y0 + (k + 1) * band) for k in range(1, 7, 2)]
    elif look.pattern == "vstripes":
        step = (x1 - x0) / 5.0
        stripes = [(x0 + k * step, y0, x0 + (k + 1) * step, y1) for k in (1, 3)]
    elif look.pattern == "twotone":
        stripes = [(x0, (y0 + y1) / 2, x1, y1)]
    for stripe in stripes:  # one fill each: anti-aliased edges blend in drawing order
        fill_polygons(img, [rect_quad(stripe)], look.accent)


def _draw_shadow(img: np.ndarray, x: float, y: float, half_w: float, half_h: float) -> None:
    """A soft dark ellipse on the ground under a figure (darkens the pixel below it)."""
    fx, fy = round(x), round(y)
    if 0 <= fx < img.shape[1] and 0 <= fy < img.shape[0]:
        shadow = tuple(int(c * 0.55) for c in img[fy, fx])
        axes = (fixed_length(half_w), fixed_length(half_h))
        cv2.ellipse(img, fixed_point(x, y), axes, 0, 0, 360, shadow, -1, cv2.LINE_AA, SHIFT)


def _draw_figure(img: np.ndarray, fig: FigureState) -> None:
    """Draw a person: shadow, legs, shoes, shirt with its pattern, arms, hands, head."""
    parts = figure_parts(fig)
    look = fig.look
    assert isinstance(look, FigureLook)  # figure_parts checked it
    _draw_shadow(img, fig.foot_x, fig.foot_y, 0.22 * fig.height, 0.035 * fig.height)
    fill_polygons(img, parts.legs, look.pants)
    for leg in parts.legs:
        top = leg[[1, 2]] + (leg[[0, 3]] - leg[[1, 2]]) * 0.12
        shoe = np.array([top[0], leg[1], leg[2], top[1]])
        fill_polygons(img, [shoe], _SHOE)
    _draw_shirt(img, look, parts.torso)
    fill_polygons(img, parts.arms, look.shirt)
    for hand in parts.hands:
        fill_circle(img, hand, look.skin)
    fill_circle(img, parts.head, look.skin)
    cx, cy, r = parts.head
    center = fixed_point(cx, cy - 0.1 * r)
    axes = (fixed_length(r), fixed_length(0.75 * r))
    cv2.ellipse(img, center, axes, 0, 180, 360, look.hair, -1, cv2.LINE_AA, SHIFT)


def _scaled(color: Color, factor: float) -> Color:
    """``color`` darkened (factor < 1) or brightened, clipped to 0..255."""
    b, g, r = (min(round(c * factor), 255) for c in color)
    return (b, g, r)


def _wheel_mark(wheel: Circle, angle: float) -> Circle:
    """A small hub-cap mark that turns with the wheel."""
    cx, cy, r = wheel
    return (cx + 0.3 * r * math.cos(angle), cy + 0.3 * r * math.sin(angle), 0.12 * r)


def _draw_car(img: np.ndarray, fig: FigureState, look: CarLook) -> None:
    """Draw a car: shadow, body with its pattern, cabin, windows, lights, turning wheels."""
    parts = car_parts(fig)
    h, f = fig.height, fig.facing
    _draw_shadow(img, fig.foot_x, fig.foot_y, 0.5 * look.length * h, 0.05 * h)
    fill_polygons(img, [parts.body], look.body)
    x0, x1 = float(parts.body[:, 0].min()), float(parts.body[:, 0].max())
    if look.pattern == "stripe":
        fill_polygons(
            img, [rect_quad((x0, fig.foot_y - 0.42 * h, x1, fig.foot_y - 0.35 * h))], look.accent
        )
    elif look.pattern == "twotone":
        fill_polygons(
            img, [rect_quad((x0, fig.foot_y - 0.38 * h, x1, fig.foot_y - 0.18 * h))], look.accent
        )
    fill_polygons(img, [parts.cabin], look.accent if look.pattern == "roof" else look.body)
    fill_polygons(img, list(parts.windows), look.window)
    front = x1 if f > 0 else x0
    rear = x0 if f > 0 else x1
    light_y = fig.foot_y - 0.4 * h  # below the bonnet's slope: inside the silhouette
    for x, color in ((front - f * 0.08 * h, _HEADLIGHT), (rear + f * 0.05 * h, _TAIL_LIGHT)):
        fill_polygons(
            img, [rect_quad((x - 0.05 * h, light_y, x + 0.05 * h, light_y + 0.07 * h))], color
        )
    for wheel in parts.wheels:
        fill_circle(img, wheel, _TYRE)
        cx, cy, r = wheel
        fill_circle(img, (cx, cy, 0.5 * r), _HUB)
        fill_circle(img, _wheel_mark(wheel, fig.phase), _TYRE)


def _draw_dog(img: np.ndarray, fig: FigureState, look: DogLook) -> None:
    """Draw a dog: shadow, far legs, tail, body with its pattern, near legs, head."""
    parts = dog_parts(fig)
    h, f = fig.height, fig.facing
    length = look.length * h
    _draw_shadow(img, fig.foot_x, fig.foot_y, 0.4 * length, 0.05 * h)
    fill_polygons(img, list(parts.legs[:2]), _scaled(look.fur, 0.75))
    fill_polygons(img, [parts.tail], look.fur)
    fill_polygons(img, [parts.body], look.fur)
    body_x = fig.foot_x - f * 0.04 * length
    body_y = fig.foot_y - 0.55 * h
    if look.pattern == "spots":
        for u, dy in ((-0.15, -0.04), (0.05, 0.05), (0.18, -0.06)):
            fill_circle(img, (body_x + f * u * length, body_y + dy * h, 0.06 * h), look.patch)
    elif look.pattern == "saddle":
        saddle = ellipse_polygon(
            body_x - f * 0.04 * length, body_y - 0.07 * h, 0.2 * length, 0.08 * h
        )
        fill_polygons(img, [saddle], look.patch)
    fill_polygons(img, list(parts.legs[2:]), look.fur)
    if look.pattern == "socks":
        for leg in parts.legs:
            sock = np.array(
                [leg[0] + 0.7 * (leg[1] - leg[0]), leg[1], leg[2], leg[3] + 0.7 * (leg[2] - leg[3])]
            )
            fill_polygons(img, [sock], look.patch)
    fill_circle(img, parts.head, look.fur)
    fill_polygons(img, [parts.snout], _scaled(look.fur, 1.15))
    fill_polygons(img, [parts.ear], _scaled(look.fur, 0.6))
    hx, hy, r = parts.head
    fill_circle(img, (hx + f * 0.35 * r, hy - 0.25 * r, 0.14 * r), _DARK)
    nose = parts.snout[1]
    fill_circle(img, (float(nose[0]) - f * 0.06 * h, float(nose[1]) + 0.03 * h, 0.045 * h), _DARK)


def _chord_band(ball: Circle, angle: float, near: float, far: float) -> np.ndarray:
    """The part of a ball between two chords at distances ``near`` < ``far`` (x radius)."""
    cx, cy, r = ball
    points = []
    for dist, sides in ((near, (1.0, -1.0)), (far, (-1.0, 1.0))):
        half = math.sqrt(max(1.0 - dist * dist, 0.0))
        for side in sides:
            u, v = dist, side * half  # along and across the band's normal
            points.append(
                (
                    cx + r * (u * math.cos(angle) - v * math.sin(angle)),
                    cy + r * (u * math.sin(angle) + v * math.cos(angle)),
                )
            )
    return np.array(points)


def _wedge(ball: Circle, start: float, stop: float) -> np.ndarray:
    """A pie slice of a ball between two angles (inscribed polygon)."""
    cx, cy, r = ball
    angles = np.linspace(start, stop, 6)
    arc = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    return np.concatenate([[[cx, cy]], arc])


def _draw_ball(img: np.ndarray, fig: FigureState, look: BallLook) -> None:
    """Draw a ball: shadow (smaller when it is up), its pattern turned by its roll."""
    ball = ball_parts(fig).ball
    cx, cy, r = ball
    lift = ball_elevation(fig) / max(fig.height, 1.0)
    _draw_shadow(img, fig.foot_x, fig.foot_y, r * (1.0 - 0.3 * min(lift, 1.0)), 0.25 * r)
    fill_circle(img, ball, look.color)
    turn = fig.phase
    if look.pattern == "wedges":
        wedges = [
            _wedge(ball, turn + k * math.pi / 2, turn + (k + 0.5) * math.pi / 2) for k in range(4)
        ]
        fill_polygons(img, wedges, look.accent)
    elif look.pattern == "band":
        fill_polygons(img, [_chord_band(ball, turn, -0.3, 0.3)], look.accent)
    elif look.pattern == "dots":
        for k in range(3):
            angle = turn + k * 2 * math.pi / 3
            dot = (cx + 0.55 * r * math.cos(angle), cy + 0.55 * r * math.sin(angle), 0.22 * r)
            fill_circle(img, dot, look.accent)
    else:  # two thin seams, as on a tennis ball
        seams = [_chord_band(ball, turn, d, d + 0.12) for d in (-0.6, 0.48)]
        fill_polygons(img, seams, look.accent)
    fill_circle(img, (cx - 0.35 * r, cy - 0.35 * r, 0.18 * r), _scaled(look.color, 1.5))


def _draw_object(img: np.ndarray, fig: FigureState) -> None:
    """Draw a figure of any class."""
    look = fig.look
    if isinstance(look, CarLook):
        _draw_car(img, fig, look)
    elif isinstance(look, DogLook):
        _draw_dog(img, fig, look)
    elif isinstance(look, BallLook):
        _draw_ball(img, fig, look)
    else:
        _draw_figure(img, fig)


def _draw_occluder(img: np.ndarray, occluder: Occluder) -> None:
    """Draw a pole (with a highlight) or a poster of printed figures."""
    x0, y0, x1, y1 = occluder.box_xyxy
    fill_polygons(img, [rect_quad(occluder.box_xyxy)], occluder.color)
    if occluder.kind == "pole":
        blue, green, red = occluder.color
        highlight = (min(blue + 50, 255), min(green + 50, 255), min(red + 50, 255))
        fill_polygons(img, [rect_quad((x0 + 1, y0, x0 + 2, y1))], highlight)
        return
    # A poster: small printed people that are not real people (CrowdHuman "mask").
    rng = np.random.default_rng(occluder.seed)
    count = int(rng.integers(3, 7))
    for k in range(count):
        fh = (y1 - y0) * float(rng.uniform(0.5, 0.8))
        fx = x0 + (x1 - x0) * (k + 0.5) / count
        fig = FigureState(0, random_look(rng), fx, y1 - 3, fh, float(rng.uniform(0, 6.3)))
        _draw_figure(img, fig)
    top_left, bottom_right = fixed_point(x0, y0), fixed_point(x1, y1)
    cv2.rectangle(img, top_left, bottom_right, _POSTER_FRAME, 2, cv2.LINE_AA, SHIFT)


def render_frame(scene: SceneState, background: np.ndarray, *, margin: int = 0) -> np.ndarray:
    """Draw ``scene`` over ``background``.

    Args:
        scene: figures and occluders in image coordinates.
        background: BGR image ``margin`` pixels larger than the output on every side;
            the camera shift picks the crop.
        margin: border of ``background`` reserved for the camera shift.

    Returns:
        (H, W, 3) uint8 BGR image, H and W = background size minus ``2 * margin``.
    """
    height = background.shape[0] - 2 * margin
    width = background.shape[1] - 2 * margin
    dx, dy = scene.shift
    top, left = margin - dy, margin - dx
    img = np.ascontiguousarray(background[top : top + height, left : left + width])
    for item in depth_order(scene):
        if isinstance(item, Occluder):
            _draw_occluder(img, item)
        else:
            _draw_object(img, item)
    return img


__all__ = ["make_background", "render_frame"]
