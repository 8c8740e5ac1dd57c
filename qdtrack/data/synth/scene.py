"""What a synthetic image shows: figures, occluders and their appearance (no pixels).

A "figure" is any object: a person, or in the multi-class mode also a car, a dog or a
ball. Figures stand on a ground plane seen by a fixed camera: their height follows a
simple perspective (feet lower in the image -> taller figure). Each class has its own
appearance dataclass; the look's type fixes the class for the figure's whole life.
Colours are BGR, as OpenCV draws.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

Color = tuple[int, int, int]  # BGR, as OpenCV draws
BoxXyxy = tuple[float, float, float, float]

# Category ids (TAO / LVIS ``category_id`` and the MOT gt class column) and names, in the
# order the multi-class mode adds them: ``num_classes = N`` uses the first N.
PERSON, CAR, DOG, BALL = 1, 2, 3, 4
CATEGORY_NAMES = ("person", "car", "dog", "ball")
MAX_CLASSES = len(CATEGORY_NAMES)

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
# Sizes of the other classes relative to a person at the same depth (they multiply the
# perspective height, so ``look.size`` already includes them).
_CAR_SIZE = (0.42, 0.52)
_DOG_SIZE = (0.28, 0.36)
_BALL_SIZE = (0.2, 0.28)
_CAR_PATTERNS = ("solid", "stripe", "twotone", "roof")
_DOG_PATTERNS = ("solid", "spots", "saddle", "socks")
_BALL_PATTERNS = ("wedges", "band", "dots", "seams")
_FUR = (
    (25, 25, 30),  # black
    (30, 55, 95),  # dark brown
    (45, 90, 150),  # brown
    (90, 150, 205),  # tan
    (80, 170, 225),  # golden
    (190, 220, 235),  # cream
    (235, 240, 240),  # white
    (135, 135, 140),  # grey
    (40, 70, 170),  # rust
)
# Look-alikes differ at least this much in colour (sum of absolute BGR differences).
_LOOKALIKE_COLOR_GAP = 150


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

    category_id: ClassVar[int] = PERSON

    def half_width(self, height: float) -> float:
        """Generous half-width of the figure (arms swinging included)."""
        return (self.build + 0.12) * height


@dataclass(frozen=True)
class CarLook:
    """Appearance of one car, seen from the side (colours are BGR)."""

    body: Color
    accent: Color  # stripe, lower half or roof, depending on ``pattern``
    pattern: str
    window: Color
    size: float  # car height relative to a person at the same depth
    length: float  # body length / car height
    cabin: float  # cabin length / body length

    category_id: ClassVar[int] = CAR

    def half_width(self, height: float) -> float:
        """Half the body length plus a pixel."""
        return 0.5 * self.length * height + 1.0


@dataclass(frozen=True)
class DogLook:
    """Appearance of one dog, seen from the side (colours are BGR)."""

    fur: Color
    patch: Color  # spots, saddle or socks, depending on ``pattern``
    pattern: str
    size: float  # dog height (to the top of the head) relative to a person
    length: float  # nose-to-tail length / dog height
    ear_up: bool

    category_id: ClassVar[int] = DOG

    def half_width(self, height: float) -> float:
        """Half the nose-to-tail length plus a margin for the tail."""
        return (0.5 * self.length + 0.1) * height


@dataclass(frozen=True)
class BallLook:
    """Appearance and bounce of one ball (colours are BGR)."""

    color: Color
    accent: Color
    pattern: str
    size: float  # diameter relative to a person's height at the same depth
    bounce: float  # bounce height / diameter (0: the ball rolls)
    bounce_rate: float  # bounces per radian of rolling, times pi

    category_id: ClassVar[int] = BALL

    def half_width(self, height: float) -> float:
        """The radius plus a pixel."""
        return 0.5 * height + 1.0


Look = FigureLook | CarLook | DogLook | BallLook


@dataclass(frozen=True)
class FigureState:
    """One figure (any class) in one frame, in image pixels (camera shift included).

    ``foot_x, foot_y`` is where it touches the ground (bottom centre; a bouncing ball's
    shadow), ``height`` its height in pixels (a ball's diameter) and ``phase`` its
    walking phase, or the rotation of a car's wheels or of a ball, in radians.
    """

    track_id: int
    look: Look
    foot_x: float
    foot_y: float
    height: float
    phase: float
    facing: float = 1.0  # +1 moving right, -1 left (cars and dogs face that way)

    @property
    def category_id(self) -> int:
        """The figure's class (1 person, 2 car, 3 dog, 4 ball)."""
        return self.look.category_id


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


def _color_distance(a: Color, b: Color) -> int:
    """Sum of absolute BGR differences."""
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


def _saturated(rng: np.random.Generator, hue: float) -> Color:
    """A clearly coloured BGR colour of the given hue."""
    return hsv_bgr(hue, float(rng.uniform(0.55, 0.95)), float(rng.uniform(0.6, 0.95)))


def _hue(color: Color) -> float:
    """Hue (0..1) of a BGR colour."""
    return colorsys.rgb_to_hsv(*(c / 255 for c in reversed(color)))[0]


def random_car_look(rng: np.random.Generator) -> CarLook:
    """A random car appearance."""
    hue = float(rng.random())
    return CarLook(
        body=_saturated(rng, hue),
        accent=hsv_bgr(hue + float(rng.uniform(0.3, 0.7)), 0.2, float(rng.uniform(0.85, 1.0))),
        pattern=_CAR_PATTERNS[int(rng.integers(len(_CAR_PATTERNS)))],
        window=hsv_bgr(0.55, float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.25, 0.5))),
        size=float(rng.uniform(*_CAR_SIZE)),
        length=float(rng.uniform(2.0, 2.6)),
        cabin=float(rng.uniform(0.45, 0.62)),
    )


def random_dog_look(rng: np.random.Generator) -> DogLook:
    """A random dog appearance (natural fur colours)."""
    fur = int(rng.integers(len(_FUR)))
    patch = (fur + int(rng.integers(3, len(_FUR) - 2))) % len(_FUR)
    return DogLook(
        fur=_FUR[fur],
        patch=_FUR[patch],
        pattern=_DOG_PATTERNS[int(rng.integers(len(_DOG_PATTERNS)))],
        size=float(rng.uniform(*_DOG_SIZE)),
        length=float(rng.uniform(1.3, 1.7)),
        ear_up=bool(rng.random() < 0.5),
    )


def random_ball_look(rng: np.random.Generator) -> BallLook:
    """A random ball: half of them bounce, the others roll."""
    hue = float(rng.random())
    bounces = rng.random() < 0.5
    return BallLook(
        color=_saturated(rng, hue),
        accent=hsv_bgr(hue + float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.0, 0.9)), 0.95),
        pattern=_BALL_PATTERNS[int(rng.integers(len(_BALL_PATTERNS)))],
        size=float(rng.uniform(*_BALL_SIZE)),
        bounce=float(rng.uniform(0.6, 1.4)) if bounces else 0.0,
        bounce_rate=float(rng.uniform(0.2, 0.4)),
    )


def random_object_look(rng: np.random.Generator, category: int) -> Look:
    """A random appearance of class ``category`` (a person draws as :func:`random_look`)."""
    if category == PERSON:
        return random_look(rng)
    if category == CAR:
        return random_car_look(rng)
    if category == DOG:
        return random_dog_look(rng)
    if category == BALL:
        return random_ball_look(rng)
    raise ValueError(f"unknown category id {category}")


def lookalike_of(look: FigureLook, rng: np.random.Generator) -> FigureLook:
    """Same size, build, pattern, pants and skin; clearly different shirt colours."""
    hue = colorsys.rgb_to_hsv(*(c / 255 for c in reversed(look.shirt)))[0]
    other = hue + float(rng.uniform(0.3, 0.7))
    return replace(
        look,
        shirt=hsv_bgr(other, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.6, 0.95))),
        accent=hsv_bgr(other + 0.5, float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.75, 1.0))),
    )


def _other_fur(fur: Color, rng: np.random.Generator) -> Color:
    """A fur colour clearly different from ``fur``."""
    far = [c for c in _FUR if _color_distance(c, fur) >= _LOOKALIKE_COLOR_GAP]
    return far[int(rng.integers(len(far)))]


def lookalike_look(look: Look, rng: np.random.Generator) -> Look:
    """Same class, shape, size and pattern as ``look``; clearly different colours."""
    if isinstance(look, FigureLook):
        return lookalike_of(look, rng)
    if isinstance(look, CarLook):
        hue = _hue(look.body) + float(rng.uniform(0.3, 0.7))
        return replace(look, body=_saturated(rng, hue))
    if isinstance(look, DogLook):
        fur = _other_fur(look.fur, rng)
        patch = look.patch if look.patch != fur else look.fur
        return replace(look, fur=fur, patch=patch)
    hue = _hue(look.color) + float(rng.uniform(0.3, 0.7))
    return replace(look, color=_saturated(rng, hue), accent=hsv_bgr(hue + 0.5, 0.3, 0.95))


__all__ = [
    "BALL",
    "CAR",
    "CATEGORY_NAMES",
    "DOG",
    "HORIZON",
    "MAX_CLASSES",
    "PERSON",
    "PERSON_SCALE",
    "BallLook",
    "BoxXyxy",
    "CarLook",
    "Color",
    "DogLook",
    "FigureLook",
    "FigureState",
    "Look",
    "Occluder",
    "SceneState",
    "SequenceSim",
    "foot_limits",
    "hsv_bgr",
    "lookalike_look",
    "lookalike_of",
    "perspective_height",
    "random_ball_look",
    "random_car_look",
    "random_dog_look",
    "random_look",
    "random_object_look",
]
