"""What a synthetic image shows: figures, occluders and their appearance (no pixels).

Figures stand on a ground plane seen by a fixed camera: their height follows a simple
perspective (feet lower in the image -> taller figure). Colours are BGR, as OpenCV draws.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

Color = tuple[int, int, int]  # BGR, as OpenCV draws
BoxXyxy = tuple[float, float, float, float]

# The horizon of the ground plane, as a fraction of the image height.
HORIZON = 0.18
# A figure with its feet on the bottom row is this fraction of the image height tall.
PERSON_SCALE = 0.55
# Feet stay between these fractions of the image height (far .. near).
_FOOT_Y_RANGE = (0.46, 0.97)
_PATTERNS = ("solid", "hstripes", "vstripes", "twotone")
_PANTS = ((60, 40, 30), (40, 40, 40), (90, 80, 70), (30, 30, 90), (70, 110, 140), (110, 60, 40))
_SKIN = ((150, 180, 225), (120, 150, 200), (80, 110, 160), (60, 80, 120), (170, 195, 235))
_HAIR = ((20, 20, 20), (30, 50, 80), (60, 90, 140), (150, 150, 150))


@dataclass(frozen=True)
class FigureLook:
    """Appearance of one figure (colours are BGR)."""

    skin: Color
    hair: Color
    shirt: Color
    accent: Color
    pattern: str
    pants: Color
    size: float  # multiplies the perspective height
    build: float  # torso half-width as a fraction of the height


@dataclass(frozen=True)
class FigureState:
    """One figure in one frame, in image pixels (camera shift included)."""

    track_id: int
    look: FigureLook
    foot_x: float
    foot_y: float
    height: float
    phase: float  # walking phase in radians (swings arms and legs)


@dataclass(frozen=True)
class Occluder:
    """A static scene object drawn in depth order: a ``"pole"`` or a ``"poster"``."""

    kind: str
    box_xyxy: BoxXyxy
    depth_y: float
    color: Color
    seed: int = 0  # poster content


@dataclass(frozen=True)
class SceneState:
    """Everything drawn in one image."""

    figures: tuple[FigureState, ...]
    occluders: tuple[Occluder, ...] = ()
    shift: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class SequenceSim:
    """A simulated sequence: one scene per frame (index 0 is MOT frame 1)."""

    frames: tuple[SceneState, ...]
    lookalike_pairs: tuple[tuple[int, int], ...]
    background_seed: int


def perspective_height(foot_y: float, image_height: int, size: float = 1.0) -> float:
    """Height in pixels of a figure whose feet are at row ``foot_y``."""
    horizon = HORIZON * image_height
    depth = max(foot_y - horizon, 1.0) / (image_height - horizon)
    return size * PERSON_SCALE * image_height * depth


def foot_limits(image_height: int) -> tuple[float, float]:
    """Rows between which the feet of walking figures stay (far, near)."""
    return (_FOOT_Y_RANGE[0] * image_height, _FOOT_Y_RANGE[1] * image_height)


def hsv_bgr(hue: float, sat: float, val: float) -> Color:
    """An HSV colour (all in 0..1, hue wraps) as 0..255 BGR."""
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return (round(b * 255), round(g * 255), round(r * 255))


def random_look(rng: np.random.Generator, hue: float | None = None) -> FigureLook:
    """A random figure appearance; ``hue`` fixes the shirt hue (0..1)."""
    shirt_hue = float(rng.random()) if hue is None else hue
    return FigureLook(
        skin=_SKIN[int(rng.integers(len(_SKIN)))],
        hair=_HAIR[int(rng.integers(len(_HAIR)))],
        shirt=hsv_bgr(shirt_hue, float(rng.uniform(0.55, 0.95)), float(rng.uniform(0.55, 0.95))),
        accent=hsv_bgr(
            shirt_hue + float(rng.uniform(0.3, 0.7)),
            float(rng.uniform(0.1, 0.9)),
            float(rng.uniform(0.75, 1.0)),
        ),
        pattern=_PATTERNS[int(rng.integers(len(_PATTERNS)))],
        pants=_PANTS[int(rng.integers(len(_PANTS)))],
        size=float(rng.uniform(0.85, 1.1)),
        build=float(rng.uniform(0.1, 0.14)),
    )


def lookalike_of(look: FigureLook, rng: np.random.Generator) -> FigureLook:
    """Same size, build, pattern, pants and skin; clearly different shirt colours."""
    hue = colorsys.rgb_to_hsv(*(c / 255 for c in reversed(look.shirt)))[0]
    other = hue + float(rng.uniform(0.3, 0.7))
    return replace(
        look,
        shirt=hsv_bgr(other, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.6, 0.95))),
        accent=hsv_bgr(other + 0.5, float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.75, 1.0))),
    )


__all__ = [
    "HORIZON",
    "PERSON_SCALE",
    "BoxXyxy",
    "Color",
    "FigureLook",
    "FigureState",
    "Occluder",
    "SceneState",
    "SequenceSim",
    "foot_limits",
    "hsv_bgr",
    "lookalike_of",
    "perspective_height",
    "random_look",
]
