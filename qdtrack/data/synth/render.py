"""Pixels of a synthetic scene: textured backgrounds, figures and occluders."""

from __future__ import annotations

import cv2
import numpy as np

from qdtrack.data.synth.geometry import (
    SHIFT,
    depth_order,
    figure_parts,
    fill_circle,
    fill_polygons,
    fixed_length,
    fixed_point,
    rect_quad,
)
from qdtrack.data.synth.scene import (
    HORIZON,
    BoxXyxy,
    FigureState,
    Occluder,
    SceneState,
    hsv_bgr,
    random_look,
)

_SHOE = (25, 25, 30)
_POSTER_FRAME = (40, 40, 40)


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


def _draw_shirt(img: np.ndarray, fig: FigureState, torso: BoxXyxy) -> None:
    """Fill the torso with the shirt colour and its accent pattern."""
    look = fig.look
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


def _draw_figure(img: np.ndarray, fig: FigureState) -> None:
    """Draw a figure: shadow, legs, shoes, shirt with its pattern, arms, hands, head."""
    parts = figure_parts(fig)
    look = fig.look
    h = fig.height
    fx, fy = round(fig.foot_x), round(fig.foot_y)
    if 0 <= fx < img.shape[1] and 0 <= fy < img.shape[0]:
        shadow = tuple(int(c * 0.55) for c in img[fy, fx])
        axes = (fixed_length(0.22 * h), fixed_length(0.035 * h))
        center = fixed_point(fig.foot_x, fig.foot_y)
        cv2.ellipse(img, center, axes, 0, 0, 360, shadow, -1, cv2.LINE_AA, SHIFT)
    fill_polygons(img, parts.legs, look.pants)
    for leg in parts.legs:
        top = leg[[1, 2]] + (leg[[0, 3]] - leg[[1, 2]]) * 0.12
        shoe = np.array([top[0], leg[1], leg[2], top[1]])
        fill_polygons(img, [shoe], _SHOE)
    _draw_shirt(img, fig, parts.torso)
    fill_polygons(img, parts.arms, look.shirt)
    for hand in parts.hands:
        fill_circle(img, hand, look.skin)
    fill_circle(img, parts.head, look.skin)
    cx, cy, r = parts.head
    center = fixed_point(cx, cy - 0.1 * r)
    axes = (fixed_length(r), fixed_length(0.75 * r))
    cv2.ellipse(img, center, axes, 0, 180, 360, look.hair, -1, cv2.LINE_AA, SHIFT)


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
            _draw_figure(img, item)
    return img


__all__ = ["make_background", "render_frame"]
