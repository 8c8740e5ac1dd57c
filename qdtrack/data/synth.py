"""Deterministic synthetic MOTChallenge + CrowdHuman data: the project's embedded default data.

People-like figures (head, torso with a clothing pattern, arms, legs) walk over a textured
background with smooth random velocities, enter and leave the frame, occlude each other by
depth and pass behind a pole. Their height follows a simple ground-plane perspective
(feet lower in the image -> taller figure) and a small camera jitter shifts everything.
Each sequence contains "look-alike pairs": two figures of the same size and shape whose
paths cross at close range, so position / IoU alone can swap them; only their clothing
colours tell them apart.

The pipeline is split into pure pieces:

* :func:`simulate_sequence` / :func:`simulate_still` -> scene states (no pixels);
* :func:`label_scene` -> full-body boxes and visibility of each figure;
* :func:`render_frame` -> a BGR image of one scene;
* :func:`make_detections` -> noisy public detections derived from the gt;
* :func:`generate` writes everything; :func:`main` is the ``qdtrack data synth`` handler.

Same seed and config -> byte-identical files.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from qdtrack.data.crowdhuman import CrowdHumanBox, CrowdHumanImage, write_odgt
from qdtrack.data.mot import MotTable, SeqInfo, write_mot_txt, write_seqinfo
from qdtrack.io_utils import atomic_write, write_json
from qdtrack.structures import box_iou, tlwh_to_xyxy

Color = tuple[int, int, int]  # BGR, as OpenCV draws
BoxXyxy = tuple[float, float, float, float]

FORMAT_VERSION = 1
# Drawing uses fixed-point coordinates (OpenCV ``shift``) so motion is sub-pixel smooth.
_SHIFT = 4
_ONE = 1 << _SHIFT
# The horizon of the ground plane, as a fraction of the image height.
_HORIZON = 0.18
# A figure with its feet on the bottom row is this fraction of the image height tall.
_PERSON_SCALE = 0.55
# Feet stay between these fractions of the image height (far .. near).
_FOOT_Y_RANGE = (0.46, 0.97)
# A figure enters the gt once this fraction of its box lies inside the image.
_MIN_IN_FRAME = 0.3
# Walking speed range in pixels per frame for a figure at the bottom of the image.
_WALK_SPEED = (2.0, 4.5)
_PATTERNS = ("solid", "hstripes", "vstripes", "twotone")
_PANTS = ((60, 40, 30), (40, 40, 40), (90, 80, 70), (30, 30, 90), (70, 110, 140), (110, 60, 40))
_SKIN = ((150, 180, 225), (120, 150, 200), (80, 110, 160), (60, 80, 120), (170, 195, 235))
_HAIR = ((20, 20, 20), (30, 50, 80), (60, 90, 140), (150, 150, 150))


# --------------------------------------------------------------------------------------
# Configuration and scene states
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthConfig:
    """Sizes of the synthetic dataset.

    Attributes:
        train_seqs: number of ``train/`` sequences (>= 1).
        val_seqs: number of ``val/`` sequences (>= 0).
        frames: frames per sequence (>= 2).
        width: image width in pixels.
        height: image height in pixels.
        min_figures: fewest figures alive at a time (new ones walk in below this).
        max_figures: most figures the spawner keeps alive (look-alike pairs may add one).
        crowdhuman_images: number of CrowdHuman-style still images (>= 0).
        frame_rate: frames per second written to ``seqinfo.ini``.
        jpeg_quality: OpenCV JPEG quality (1..100).
        jitter_px: largest camera shift in pixels.
    """

    train_seqs: int = 2
    val_seqs: int = 2
    frames: int = 120
    width: int = 384
    height: int = 224
    min_figures: int = 5
    max_figures: int = 8
    crowdhuman_images: int = 40
    frame_rate: int = 10
    jpeg_quality: int = 90
    jitter_px: int = 4

    def __post_init__(self) -> None:
        checks = (
            (self.train_seqs >= 1, f"train_seqs must be >= 1, got {self.train_seqs}"),
            (self.val_seqs >= 0, f"val_seqs must be >= 0, got {self.val_seqs}"),
            (self.frames >= 2, f"frames must be >= 2, got {self.frames}"),
            (self.width >= 64 and self.height >= 64, "width and height must be >= 64 pixels"),
            (
                1 <= self.min_figures <= self.max_figures,
                f"need 1 <= min_figures <= max_figures, got {self.min_figures}, {self.max_figures}",
            ),
            (
                self.crowdhuman_images >= 0,
                f"crowdhuman_images must be >= 0, got {self.crowdhuman_images}",
            ),
            (self.frame_rate >= 1, f"frame_rate must be >= 1, got {self.frame_rate}"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in 1..100"),
            (0 <= self.jitter_px <= 16, "jitter_px must be in 0..16"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


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


@dataclass(frozen=True)
class FigureLabel:
    """Annotation of one figure in one scene.

    Attributes:
        track_id: the simulation's id of the figure.
        box_xyxy: full-body box, not clipped to the image.
        head_xyxy: head box.
        visibility: fraction of the silhouette not hidden by figures or occluders in
            front of it (the image border does not count).
        in_frame: fraction of ``box_xyxy`` inside the image.
        visible_xyxy: box of the visible silhouette pixels inside the image (None if none).
        head_visibility: fraction of the head that is visible inside the image.
    """

    track_id: int
    box_xyxy: BoxXyxy
    head_xyxy: BoxXyxy
    visibility: float
    in_frame: float
    visible_xyxy: BoxXyxy | None
    head_visibility: float


@dataclass(frozen=True)
class SequenceSummary:
    """Counts of one written sequence."""

    split: str
    name: str
    frames: int
    gt_boxes: int
    ids: int
    det_boxes: int
    lookalike_pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate` wrote."""

    out_dir: str
    seed: int
    sequences: tuple[SequenceSummary, ...]
    crowdhuman_images: int
    crowdhuman_persons: int
    crowdhuman_masks: int
    config: SynthConfig = field(default_factory=SynthConfig)

    @property
    def frames(self) -> int:
        """Frames over all sequences."""
        return sum(s.frames for s in self.sequences)

    @property
    def gt_boxes(self) -> int:
        """Ground-truth boxes over all sequences."""
        return sum(s.gt_boxes for s in self.sequences)

    @property
    def ids(self) -> int:
        """Distinct ids summed over sequences."""
        return sum(s.ids for s in self.sequences)


# --------------------------------------------------------------------------------------
# Geometry: perspective, figure parts, silhouettes
# --------------------------------------------------------------------------------------


def perspective_height(foot_y: float, image_height: int, size: float = 1.0) -> float:
    """Height in pixels of a figure whose feet are at row ``foot_y``."""
    horizon = _HORIZON * image_height
    depth = max(foot_y - horizon, 1.0) / (image_height - horizon)
    return size * _PERSON_SCALE * image_height * depth


@dataclass(frozen=True)
class _Parts:
    """Drawable parts of a figure: circles (cx, cy, r) and polygons (k, 2)."""

    head: tuple[float, float, float]
    hands: tuple[tuple[float, float, float], ...]
    torso: BoxXyxy
    arms: tuple[np.ndarray, ...]
    legs: tuple[np.ndarray, ...]

    def polygons(self) -> list[np.ndarray]:
        x0, y0, x1, y1 = self.torso
        torso = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
        return [torso, *self.arms, *self.legs]

    def circles(self) -> list[tuple[float, float, float]]:
        return [self.head, *self.hands]


def _segment_quad(x0: float, y0: float, x1: float, y1: float, half: float) -> np.ndarray:
    """A thick segment as a 4-point polygon."""
    dx, dy = x1 - x0, y1 - y0
    norm = math.hypot(dx, dy) or 1.0
    px, py = -dy / norm * half, dx / norm * half
    return np.array(
        [[x0 + px, y0 + py], [x1 + px, y1 + py], [x1 - px, y1 - py], [x0 - px, y0 - py]]
    )


def figure_parts(fig: FigureState) -> _Parts:
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
    return _Parts(
        head=(x, top + head_r, head_r),
        hands=tuple(hands),
        torso=(x - half_torso, shoulder_y - 0.02 * h, x + half_torso, hip_y + 0.03 * h),
        arms=tuple(arms),
        legs=tuple(legs),
    )


def _parts_box(parts: _Parts) -> BoxXyxy:
    """Tight box around all parts."""
    pts = np.concatenate(parts.polygons())
    circles = np.array(parts.circles())
    x0 = min(pts[:, 0].min(), (circles[:, 0] - circles[:, 2]).min())
    y0 = min(pts[:, 1].min(), (circles[:, 1] - circles[:, 2]).min())
    x1 = max(pts[:, 0].max(), (circles[:, 0] + circles[:, 2]).max())
    y1 = max(pts[:, 1].max(), (circles[:, 1] + circles[:, 2]).max())
    return (float(x0), float(y0), float(x1), float(y1))


def _fixed(points: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Float points -> OpenCV fixed-point int32 points, relative to ``origin``."""
    shifted = (np.asarray(points, np.float64) - np.asarray(origin)) * _ONE
    return np.round(shifted).astype(np.int32).reshape(-1, 1, 2)


def _fill_circle(
    img: np.ndarray,
    circle: tuple[float, float, float],
    color: Color | int,
    origin: tuple[float, float] = (0.0, 0.0),
    line_type: int = cv2.LINE_AA,
) -> None:
    cx, cy, r = circle
    center = (round((cx - origin[0]) * _ONE), round((cy - origin[1]) * _ONE))
    cv2.circle(img, center, max(round(r * _ONE), 1), color, -1, line_type, _SHIFT)


def _fill_silhouette(
    canvas: np.ndarray,
    item: FigureState | Occluder,
    origin: tuple[float, float],
    value: int,
) -> None:
    """Paint the silhouette of a figure or occluder with ``value`` (no anti-aliasing)."""
    if isinstance(item, Occluder):
        x0, y0, x1, y1 = item.box_xyxy
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        cv2.fillPoly(canvas, [_fixed(quad, origin)], value, cv2.LINE_8, _SHIFT)
        return
    parts = figure_parts(item)
    cv2.fillPoly(canvas, [_fixed(p, origin) for p in parts.polygons()], value, cv2.LINE_8, _SHIFT)
    for circle in parts.circles():
        _fill_circle(canvas, circle, value, origin, cv2.LINE_8)


def _item_box(item: FigureState | Occluder) -> BoxXyxy:
    return item.box_xyxy if isinstance(item, Occluder) else _parts_box(figure_parts(item))


def _depth_order(scene: SceneState) -> list[FigureState | Occluder]:
    """Items far to near (feet higher in the image are further away)."""
    items: list[FigureState | Occluder] = [*scene.figures, *scene.occluders]

    def key(item: FigureState | Occluder) -> tuple[float, int]:
        if isinstance(item, Occluder):
            return (item.depth_y, -1)
        return (item.foot_y, item.track_id)

    return sorted(items, key=key)


def _overlaps(a: BoxXyxy, b: BoxXyxy) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _label_figure(
    fig: FigureState, front: list[FigureState | Occluder], width: int, height: int
) -> FigureLabel:
    """Box and visibility of ``fig`` given the items drawn in front of it."""
    box = _parts_box(figure_parts(fig))
    ox, oy = math.floor(box[0]) - 1, math.floor(box[1]) - 1
    size = (math.ceil(box[3]) - oy + 2, math.ceil(box[2]) - ox + 2)
    canvas = np.zeros(size, np.uint8)
    _fill_silhouette(canvas, fig, (ox, oy), 1)
    head_mask = np.zeros(size, np.uint8)
    parts = figure_parts(fig)
    _fill_circle(head_mask, parts.head, 1, (ox, oy), cv2.LINE_8)
    total = int(canvas.sum())
    for item in front:
        if _overlaps(box, _item_box(item)):
            _fill_silhouette(canvas, item, (ox, oy), 0)
    visibility = int(canvas.sum()) / max(total, 1)
    # Visible pixels inside the image (for CrowdHuman's vbox and head occlusion).
    ys, xs = np.nonzero(canvas)
    xs, ys = xs + ox, ys + oy
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    visible_xyxy: BoxXyxy | None = None
    if inside.any():
        xs, ys = xs[inside], ys[inside]
        visible_xyxy = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    head_visible = canvas & head_mask
    hy, hx = np.nonzero(head_visible)
    head_inside = ((hx + ox >= 0) & (hx + ox < width) & (hy + oy >= 0) & (hy + oy < height)).sum()
    cx, cy, r = parts.head
    in_w = max(0.0, min(box[2], width) - max(box[0], 0.0))
    in_h = max(0.0, min(box[3], height) - max(box[1], 0.0))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return FigureLabel(
        track_id=fig.track_id,
        box_xyxy=box,
        head_xyxy=(cx - r, cy - r, cx + r, cy + r),
        visibility=float(min(max(visibility, 0.0), 1.0)),
        in_frame=float(in_w * in_h / max(area, 1e-6)),
        visible_xyxy=visible_xyxy,
        head_visibility=float(head_inside) / max(int(head_mask.sum()), 1),
    )


def label_scene(scene: SceneState, width: int, height: int) -> list[FigureLabel]:
    """Full-body box, visibility and visible box of every figure in ``scene``.

    Visibility is the fraction of a figure's silhouette pixels that remain after painting
    every figure and occluder drawn in front of it (depth order = foot row).
    """
    order = _depth_order(scene)
    labels = []
    for index, item in enumerate(order):
        if isinstance(item, FigureState):
            labels.append(_label_figure(item, order[index + 1 :], width, height))
    return sorted(labels, key=lambda label: label.track_id)


# --------------------------------------------------------------------------------------
# Appearance
# --------------------------------------------------------------------------------------


def _hsv_bgr(hue: float, sat: float, val: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return (round(b * 255), round(g * 255), round(r * 255))


def random_look(rng: np.random.Generator, hue: float | None = None) -> FigureLook:
    """A random figure appearance; ``hue`` fixes the shirt hue (0..1)."""
    shirt_hue = float(rng.random()) if hue is None else hue
    return FigureLook(
        skin=_SKIN[int(rng.integers(len(_SKIN)))],
        hair=_HAIR[int(rng.integers(len(_HAIR)))],
        shirt=_hsv_bgr(shirt_hue, float(rng.uniform(0.55, 0.95)), float(rng.uniform(0.55, 0.95))),
        accent=_hsv_bgr(
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
        shirt=_hsv_bgr(other, float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.6, 0.95))),
        accent=_hsv_bgr(other + 0.5, float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.75, 1.0))),
    )


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured street-like background: a facade above the horizon, paving below.

    Returns:
        (height, width, 3) uint8 BGR image.
    """
    horizon = round(_HORIZON * height) + int(rng.integers(-4, 5))
    img = np.zeros((height, width, 3), np.float32)
    wall = np.array(_hsv_bgr(rng.random(), rng.uniform(0.1, 0.35), rng.uniform(0.55, 0.8)))
    ground = np.array(_hsv_bgr(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.45, 0.65)))
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


# --------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------


@dataclass
class _Agent:
    """Mutable walker state inside :func:`simulate_sequence` (ground coordinates)."""

    track_id: int
    look: FigureLook
    x: float
    y: float
    vx: float
    vy: float
    pref_vx: float
    pref_vy: float
    phase: float
    scripted: bool = False  # look-alike pair member: straight line, fixed velocity


def _foot_limits(image_height: int) -> tuple[float, float]:
    return (_FOOT_Y_RANGE[0] * image_height, _FOOT_Y_RANGE[1] * image_height)


def _depth_scale(y: float, image_height: int) -> float:
    return perspective_height(y, image_height) / (_PERSON_SCALE * image_height)


def _half_width(agent: _Agent, image_height: int) -> float:
    return (agent.look.build + 0.12) * perspective_height(agent.y, image_height, agent.look.size)


def _new_walker(
    rng: np.random.Generator,
    track_id: int,
    config: SynthConfig,
    others: list[_Agent],
    *,
    at_edge: bool,
) -> _Agent:
    """A free walker: inside the frame at the start, or just outside an edge walking in.

    A few placements are tried so that it does not start on top of a figure walking the
    same way (two such figures would overlap for the rest of their lives).
    """
    y_lo, y_hi = _foot_limits(config.height)
    look = random_look(rng)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    agent = _Agent(track_id, look, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float(rng.uniform(0, 2 * np.pi)))
    for _ in range(6):
        agent.y = float(rng.uniform(y_lo, y_hi))
        half = _half_width(agent, config.height)
        if at_edge:
            agent.x = -half + 1.0 if direction > 0 else config.width + half - 1.0
        else:
            agent.x = float(rng.uniform(0.05, 0.95)) * config.width
        crowded = any(
            abs(o.x - agent.x) < 4 * half
            and abs(o.y - agent.y) < 0.25 * config.height
            and o.vx * direction > 0
            for o in others
        )
        if not crowded:
            break
    speed = float(rng.uniform(*_WALK_SPEED)) * _depth_scale(agent.y, config.height) + 0.8
    agent.pref_vx = agent.vx = direction * speed
    agent.pref_vy = agent.vy = float(rng.normal(0.0, 0.25))
    return agent


def _pair_velocities(
    rng: np.random.Generator, speed: float
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Velocities of a look-alike pair and half their depth gap at the meeting point.

    Head-on (opposite directions, same depth), diagonal (opposite directions, paths
    crossing in depth as an X) or overtaking (same direction, one faster).
    """
    mode = int(rng.integers(3))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if mode == 0:
        return (sign * speed, 0.02), (-sign * speed * float(rng.uniform(0.9, 1.1)), -0.02), 1.5
    if mode == 1:
        vy = float(rng.uniform(0.2, 0.4))
        return (sign * speed, vy), (-sign * speed * float(rng.uniform(0.9, 1.1)), -vy), 0.0
    ratio = float(rng.uniform(1.6, 2.0))
    return (sign * speed * ratio, 0.02), (sign * speed, -0.02), 1.5


def _lookalike_pair(
    rng: np.random.Generator, ids: tuple[int, int], config: SynthConfig, slot: tuple[int, int]
) -> tuple[int, _Agent, _Agent]:
    """Two look-alikes on straight paths that meet (overlap fully) at one frame.

    Pair ``slot[0]`` of ``slot[1]`` meets within its own share of the middle of the
    sequence, so crossings of different pairs do not pile up.

    Returns:
        (0-based start frame, agent a, agent b), positioned for the start frame.
    """
    n = config.frames
    lo = 0.25 + 0.5 * slot[0] / slot[1]
    hi = lo + 0.5 / slot[1]
    meet = int(rng.integers(max(1, round(lo * n)), max(2, round(hi * n)) + 1))
    y_lo, y_hi = _foot_limits(config.height)
    yc = float(rng.uniform(y_lo + 0.25 * (y_hi - y_lo), y_hi - 0.15 * (y_hi - y_lo)))
    xc = float(rng.uniform(0.3, 0.7)) * config.width
    speed = float(rng.uniform(1.5, 2.8)) * _depth_scale(yc, config.height) + 0.6
    look_a = random_look(rng)
    look_b = lookalike_of(look_a, rng)
    va, vb, gap = _pair_velocities(rng, speed)
    # Start once the slower of them could have walked in from an edge, or at frame 0.
    start = max(0, meet - round((config.width * 0.5 + 40) / speed))
    agents = []
    for tid, look, (vx, vy), y in ((ids[0], look_a, va, yc + gap), (ids[1], look_b, vb, yc - gap)):
        dt = start - meet
        phase = float(rng.uniform(0, 2 * np.pi))
        agents.append(_Agent(tid, look, xc + vx * dt, y + vy * dt, vx, vy, vx, vy, phase, True))
    return start, agents[0], agents[1]


def _step(agent: _Agent, rng: np.random.Generator, config: SynthConfig) -> None:
    """Advance one frame: smooth random velocity for walkers, straight line for pairs."""
    if not agent.scripted:
        if rng.random() < 0.03:  # occasionally pick a new preferred velocity
            scale = _depth_scale(agent.y, config.height)
            agent.pref_vx = float(np.sign(agent.pref_vx) or 1.0) * (
                float(rng.uniform(*_WALK_SPEED)) * scale + 0.8
            )
            agent.pref_vy = float(rng.normal(0.0, 0.25))
        agent.vx += 0.15 * (agent.pref_vx - agent.vx) + float(rng.normal(0.0, 0.12))
        agent.vy += 0.15 * (agent.pref_vy - agent.vy) + float(rng.normal(0.0, 0.05))
        y_lo, y_hi = _foot_limits(config.height)
        if not y_lo <= agent.y + agent.vy <= y_hi:
            agent.vy, agent.pref_vy = -agent.vy, -agent.pref_vy
    agent.x += agent.vx
    agent.y += agent.vy
    h = perspective_height(agent.y, config.height, agent.look.size)
    agent.phase += abs(agent.vx) / max(0.12 * h, 1.0)


def _gone(agent: _Agent, config: SynthConfig) -> bool:
    """True once the figure has fully left through the side it walks towards."""
    half = _half_width(agent, config.height)
    return (agent.vx > 0 and agent.x - half > config.width + 2) or (
        agent.vx < 0 and agent.x + half < -2
    )


def _in_view(agent: _Agent, config: SynthConfig) -> bool:
    """True while some of the figure is inside the image columns."""
    half = _half_width(agent, config.height)
    return agent.x + half > 0 and agent.x - half < config.width


def _camera_shifts(rng: np.random.Generator, n: int, limit: int) -> list[tuple[int, int]]:
    """Small, temporally correlated integer shifts (hand-held camera)."""
    shifts, sx, sy = [], 0.0, 0.0
    for _ in range(n):
        sx = 0.6 * sx + float(rng.normal(0.0, 1.0))
        sy = 0.6 * sy + float(rng.normal(0.0, 0.6))
        shifts.append(
            (int(np.clip(round(sx), -limit, limit)), int(np.clip(round(sy), -limit, limit)))
        )
    return shifts


def _pole(rng: np.random.Generator, config: SynthConfig) -> Occluder:
    y_lo, y_hi = _foot_limits(config.height)
    depth = float(rng.uniform(y_lo + 0.3 * (y_hi - y_lo), y_hi - 0.15 * (y_hi - y_lo)))
    x = float(rng.uniform(0.15, 0.85)) * config.width
    half = max(2.0, 0.035 * perspective_height(depth, config.height))
    gray = int(rng.integers(50, 110))
    return Occluder("pole", (x - half, -2.0, x + half, depth), depth, (gray, gray, gray + 10))


def _to_image(agent: _Agent, shift: tuple[int, int], config: SynthConfig) -> FigureState:
    h = perspective_height(agent.y, config.height, agent.look.size)
    return FigureState(
        agent.track_id, agent.look, agent.x + shift[0], agent.y + shift[1], h, agent.phase
    )


def _shift_occluder(occluder: Occluder, shift: tuple[int, int]) -> Occluder:
    x0, y0, x1, y1 = occluder.box_xyxy
    dx, dy = shift
    return replace(
        occluder, box_xyxy=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), depth_y=occluder.depth_y + dy
    )


def simulate_sequence(rng: np.random.Generator, config: SynthConfig) -> SequenceSim:
    """Simulate one sequence: walkers, look-alike pairs, a pole and camera jitter.

    Pure: the result depends only on the generator state and ``config``.
    """
    next_id = 1
    pairs: list[tuple[int, _Agent, _Agent]] = []
    n_pairs = max(1, config.frames // 50)
    for k in range(n_pairs):
        pairs.append(_lookalike_pair(rng, (next_id, next_id + 1), config, (k, n_pairs)))
        next_id += 2
    alive = [a for start, *pair in pairs if start == 0 for a in pair]
    wanted = int(rng.integers(config.min_figures, config.max_figures + 1))
    for _ in range(max(wanted - sum(_in_view(a, config) for a in alive), 0)):
        alive.append(_new_walker(rng, next_id, config, alive, at_edge=False))
        next_id += 1
    pole = _pole(rng, config)
    shifts = _camera_shifts(rng, config.frames, config.jitter_px)
    frames = []
    for t in range(config.frames):
        if t > 0:
            alive.extend(a for start, *pair in pairs if start == t for a in pair)
        if rng.random() < 0.03:  # the crowd size drifts between min and max
            wanted = int(rng.integers(config.min_figures, config.max_figures + 1))
        if sum(_in_view(a, config) for a in alive) < wanted:
            alive.append(_new_walker(rng, next_id, config, alive, at_edge=True))
            next_id += 1
        frames.append(
            SceneState(
                figures=tuple(_to_image(a, shifts[t], config) for a in alive),
                occluders=(_shift_occluder(pole, shifts[t]),),
                shift=shifts[t],
            )
        )
        for agent in alive:
            _step(agent, rng, config)
        alive = [a for a in alive if not _gone(a, config)]
    pair_ids = tuple((a.track_id, b.track_id) for _, a, b in pairs)
    return SequenceSim(tuple(frames), pair_ids, int(rng.integers(2**31)))


def simulate_still(rng: np.random.Generator, config: SynthConfig) -> SceneState:
    """A crowded still image (CrowdHuman-style) with an optional pole and poster."""
    y_lo, y_hi = _foot_limits(config.height)
    figures = []
    for track_id in range(1, int(rng.integers(4, 13)) + 1):
        y = float(rng.uniform(y_lo, y_hi + 0.1 * config.height))
        look = random_look(rng)
        h = perspective_height(y, config.height, look.size)
        x = float(rng.uniform(-0.05, 1.05)) * config.width
        figures.append(FigureState(track_id, look, x, y, h, float(rng.uniform(0, 2 * np.pi))))
    occluders = []
    if rng.random() < 0.5:
        occluders.append(_pole(rng, config))
    if rng.random() < 0.35:  # a poster showing people: annotated as an ignore ("mask") region
        depth = float(rng.uniform(y_lo, y_lo + 0.3 * (y_hi - y_lo)))
        w, h = float(rng.uniform(50, 100)), float(rng.uniform(40, 70))
        x0 = float(rng.uniform(0, config.width - w))
        color = _hsv_bgr(rng.random(), 0.2, 0.9)
        occluders.append(
            Occluder(
                "poster", (x0, depth - h, x0 + w, depth), depth, color, int(rng.integers(2**31))
            )
        )
    return SceneState(tuple(figures), tuple(occluders))


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _draw_shirt(img: np.ndarray, fig: FigureState, torso: BoxXyxy) -> None:
    look = fig.look
    x0, y0, x1, y1 = torso
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    cv2.fillPoly(img, [_fixed(quad)], look.shirt, cv2.LINE_AA, _SHIFT)
    band = max((y1 - y0) / 7.0, 1.0)
    if look.pattern == "hstripes":
        for k in range(1, 7, 2):
            stripe = np.array(
                [
                    [x0, y0 + k * band],
                    [x1, y0 + k * band],
                    [x1, y0 + (k + 1) * band],
                    [x0, y0 + (k + 1) * band],
                ]
            )
            cv2.fillPoly(img, [_fixed(stripe)], look.accent, cv2.LINE_AA, _SHIFT)
    elif look.pattern == "vstripes":
        step = (x1 - x0) / 5.0
        for k in (1, 3):
            stripe = np.array(
                [
                    [x0 + k * step, y0],
                    [x0 + (k + 1) * step, y0],
                    [x0 + (k + 1) * step, y1],
                    [x0 + k * step, y1],
                ]
            )
            cv2.fillPoly(img, [_fixed(stripe)], look.accent, cv2.LINE_AA, _SHIFT)
    elif look.pattern == "twotone":
        mid = (y0 + y1) / 2
        lower = np.array([[x0, mid], [x1, mid], [x1, y1], [x0, y1]])
        cv2.fillPoly(img, [_fixed(lower)], look.accent, cv2.LINE_AA, _SHIFT)


def _draw_figure(img: np.ndarray, fig: FigureState) -> None:
    """Draw a figure: shadow, legs, shoes, shirt with its pattern, arms, hands, head."""
    parts = figure_parts(fig)
    look = fig.look
    h = fig.height
    fx, fy = round(fig.foot_x), round(fig.foot_y)
    if 0 <= fx < img.shape[1] and 0 <= fy < img.shape[0]:
        shadow = tuple(int(c * 0.55) for c in img[fy, fx])
        axes = (max(round(0.22 * h * _ONE), 1), max(round(0.035 * h * _ONE), 1))
        center = (round(fig.foot_x * _ONE), round(fig.foot_y * _ONE))
        cv2.ellipse(img, center, axes, 0, 0, 360, shadow, -1, cv2.LINE_AA, _SHIFT)
    cv2.fillPoly(img, [_fixed(p) for p in parts.legs], look.pants, cv2.LINE_AA, _SHIFT)
    for leg in parts.legs:
        top = leg[[1, 2]] + (leg[[0, 3]] - leg[[1, 2]]) * 0.12
        shoe = np.array([top[0], leg[1], leg[2], top[1]])
        cv2.fillPoly(img, [_fixed(shoe)], (25, 25, 30), cv2.LINE_AA, _SHIFT)
    _draw_shirt(img, fig, parts.torso)
    cv2.fillPoly(img, [_fixed(p) for p in parts.arms], look.shirt, cv2.LINE_AA, _SHIFT)
    for hand in parts.hands:
        _fill_circle(img, hand, look.skin)
    _fill_circle(img, parts.head, look.skin)
    cx, cy, r = parts.head
    center = (round(cx * _ONE), round((cy - 0.1 * r) * _ONE))
    axes = (max(round(r * _ONE), 1), max(round(0.75 * r * _ONE), 1))
    cv2.ellipse(img, center, axes, 0, 180, 360, look.hair, -1, cv2.LINE_AA, _SHIFT)


def _draw_occluder(img: np.ndarray, occluder: Occluder) -> None:
    x0, y0, x1, y1 = occluder.box_xyxy
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    cv2.fillPoly(img, [_fixed(quad)], occluder.color, cv2.LINE_AA, _SHIFT)
    if occluder.kind == "pole":
        highlight = tuple(min(c + 50, 255) for c in occluder.color)
        stripe = np.array([[x0 + 1, y0], [x0 + 2, y0], [x0 + 2, y1], [x0 + 1, y1]])
        cv2.fillPoly(img, [_fixed(stripe)], highlight, cv2.LINE_AA, _SHIFT)
        return
    # A poster: small printed people that are not real people (CrowdHuman "mask").
    rng = np.random.default_rng(occluder.seed)
    count = int(rng.integers(3, 7))
    for k in range(count):
        fh = (y1 - y0) * float(rng.uniform(0.5, 0.8))
        fx = x0 + (x1 - x0) * (k + 0.5) / count
        fig = FigureState(0, random_look(rng), fx, y1 - 3, fh, float(rng.uniform(0, 6.3)))
        _draw_figure(img, fig)
    cv2.rectangle(
        img, _fixed_point(x0, y0), _fixed_point(x1, y1), (40, 40, 40), 2, cv2.LINE_AA, _SHIFT
    )


def _fixed_point(x: float, y: float) -> tuple[int, int]:
    return (round(x * _ONE), round(y * _ONE))


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
    for item in _depth_order(scene):
        if isinstance(item, Occluder):
            _draw_occluder(img, item)
        else:
            _draw_figure(img, item)
    return img


# --------------------------------------------------------------------------------------
# Ground truth and public detections
# --------------------------------------------------------------------------------------


def _rounded_tlwh(box: BoxXyxy) -> tuple[int, int, int, int]:
    """Integer (left, top, width, height), as MOT17 gt boxes are."""
    left, top = round(box[0]), round(box[1])
    return left, top, max(round(box[2]) - left, 1), max(round(box[3]) - top, 1)


def sequence_gt(
    sim: SequenceSim, width: int, height: int
) -> tuple[MotTable, tuple[tuple[int, int], ...]]:
    """MOT17 gt of a simulated sequence and its look-alike pairs in gt ids.

    A figure is annotated while at least ``_MIN_IN_FRAME`` of its box is inside the
    image; ids are renumbered 1, 2, ... by first appearance, and ids seen in fewer than
    two frames are dropped.

    Returns:
        (gt table with flag 1, class 1 and visibility, pairs of gt ids).
    """
    rows: list[tuple[int, int, tuple[int, int, int, int], float]] = []
    for frame, scene in enumerate(sim.frames, start=1):
        for label in label_scene(scene, width, height):
            if label.in_frame >= _MIN_IN_FRAME:
                rows.append(
                    (frame, label.track_id, _rounded_tlwh(label.box_xyxy), label.visibility)
                )
    counts: dict[int, int] = {}
    for _, sim_id, _, _ in rows:
        counts[sim_id] = counts.get(sim_id, 0) + 1
    new_ids: dict[int, int] = {}
    for _, sim_id, _, _ in rows:
        if counts[sim_id] >= 2 and sim_id not in new_ids:
            new_ids[sim_id] = len(new_ids) + 1
    kept = [row for row in rows if row[1] in new_ids]
    n = len(kept)
    table = MotTable(
        frames=np.array([r[0] for r in kept], np.int64),
        ids=np.array([new_ids[r[1]] for r in kept], np.int64),
        boxes_tlwh=np.array([r[2] for r in kept], np.float32).reshape(n, 4),
        scores=np.ones(n, np.float32),
        classes=np.ones(n, np.int64),
        visibility=np.array([round(r[3], 3) for r in kept], np.float32),
    )
    pairs = tuple(
        (new_ids[a], new_ids[b]) for a, b in sim.lookalike_pairs if a in new_ids and b in new_ids
    )
    return table, pairs


@dataclass(frozen=True)
class DetectionNoise:
    """How :func:`make_detections` degrades the gt into public detections.

    Attributes:
        jitter: std of the box centre offset and log-size change, relative to box size.
        miss_base: miss probability of a fully visible figure.
        miss_occluded: extra miss probability, times ``(1 - visibility) ** 2``.
        false_per_frame: mean number of background false positives per frame.
        partial_per_frame: mean number of upper-body boxes on real figures per frame.
    """

    jitter: float = 0.05
    miss_base: float = 0.03
    miss_occluded: float = 0.7
    false_per_frame: float = 0.25
    partial_per_frame: float = 0.1


def _clip_tlwh(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    b = boxes_xyxy.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def _false_positives(
    rng: np.random.Generator,
    gt: MotTable,
    frames: int,
    width: int,
    height: int,
    noise: DetectionNoise,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background boxes of person-like size and upper-body boxes on real figures."""
    n_bg = rng.poisson(noise.false_per_frame, frames)
    frame_bg = np.repeat(np.arange(1, frames + 1), n_bg)
    y_lo, y_hi = _foot_limits(height)
    feet = rng.uniform(y_lo, y_hi, frame_bg.size)
    h = np.array([perspective_height(y, height) for y in feet]) * rng.uniform(0.6, 1.1, feet.size)
    w = h * rng.uniform(0.3, 0.5, feet.size)
    x = rng.uniform(0, width, feet.size)
    bg = np.stack([x - w / 2, feet - h, x + w / 2, feet], axis=1).reshape(-1, 4)
    n_part = min(int(rng.poisson(noise.partial_per_frame * frames)), len(gt))
    pick = np.sort(rng.choice(len(gt), n_part, replace=False)) if n_part else np.zeros(0, int)
    src = tlwh_to_xyxy(gt.boxes_tlwh[pick]).astype(np.float64)
    part = src.copy()
    part[:, 3] = src[:, 1] + (src[:, 3] - src[:, 1]) * rng.uniform(0.3, 0.45, n_part)
    boxes = np.concatenate([bg, part])
    frame_ids = np.concatenate([frame_bg, gt.frames[pick]])
    scores = np.concatenate([rng.uniform(0.05, 0.5, frame_bg.size), rng.uniform(0.2, 0.6, n_part)])
    return frame_ids, boxes, scores


def make_detections(
    rng: np.random.Generator,
    gt: MotTable,
    frames: int,
    width: int,
    height: int,
    noise: DetectionNoise | None = None,
) -> MotTable:
    """Noisy public detections derived from ``gt`` (MOT17 det layout, scores in [0, 1]).

    Boxes are jittered in proportion to their size and clipped to the image; figures are
    missed more often the more occluded they are; a few false positives are added.
    """
    noise = noise or DetectionNoise()
    n = len(gt)
    vis = np.clip(gt.visibility.astype(np.float64), 0.0, 1.0)
    keep = rng.random(n) >= noise.miss_base + noise.miss_occluded * (1.0 - vis) ** 2
    boxes = gt.boxes_tlwh.astype(np.float64)
    w = boxes[:, 2] * np.exp(rng.normal(0.0, noise.jitter, n))
    h = boxes[:, 3] * np.exp(rng.normal(0.0, noise.jitter, n))
    cx = boxes[:, 0] + boxes[:, 2] / 2 + rng.normal(0.0, noise.jitter, n) * boxes[:, 2]
    cy = boxes[:, 1] + boxes[:, 3] / 2 + rng.normal(0.0, noise.jitter, n) * boxes[:, 3]
    true_xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    true_scores = np.clip(0.45 + 0.5 * vis + rng.normal(0.0, 0.08, n), 0.02, 0.999)
    fp_frames, fp_xyxy, fp_scores = _false_positives(rng, gt, frames, width, height, noise)
    frame_ids = np.concatenate([gt.frames[keep], fp_frames]).astype(np.int64)
    tlwh = _clip_tlwh(np.concatenate([true_xyxy[keep], fp_xyxy]), width, height)
    scores = np.concatenate([true_scores[keep], fp_scores])
    valid = (tlwh[:, 2] >= 2) & (tlwh[:, 3] >= 2)
    order = np.argsort(frame_ids[valid], kind="stable")
    m = int(valid.sum())
    return MotTable(
        frames=frame_ids[valid][order],
        ids=np.full(m, -1, np.int64),
        boxes_tlwh=np.round(tlwh[valid][order], 2).astype(np.float32),
        scores=np.round(scores[valid][order], 3).astype(np.float32),
        classes=np.ones(m, np.int64),
        visibility=np.full(m, -1.0, np.float32),
    )


def detection_recall(gt: MotTable, det: MotTable, iou_thr: float = 0.5) -> float:
    """Fraction of gt boxes matched one-to-one (greedy by IoU) by a detection."""
    matched = 0
    for frame in np.unique(gt.frames):
        g, d = gt.for_frame(int(frame)), det.for_frame(int(frame))
        if not len(d):
            continue
        iou = box_iou(g.boxes_xyxy, d.boxes_xyxy)
        while iou.size and iou.max() >= iou_thr:
            i, j = np.unravel_index(int(iou.argmax()), iou.shape)
            matched += 1
            iou[i, :] = -1.0
            iou[:, j] = -1.0
    return matched / max(len(gt), 1)


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, purpose, index): adding sequences changes no other."""
    return np.random.default_rng([seed, *keys])


def _write_jpeg(path: Path, img: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"{path}: JPEG encoding failed")
    with atomic_write(path, "wb") as handle:
        handle.write(buf.tobytes())


def build_sequence(seed: int, index: int, config: SynthConfig) -> SequenceSim:
    """The simulation of sequence number ``index`` (1-based, train then val)."""
    return simulate_sequence(_rng(seed, 1, index), config)


def sequence_background(sim: SequenceSim, config: SynthConfig) -> np.ndarray:
    """The background of ``sim``, with a ``config.jitter_px`` border for the camera shift."""
    margin = config.jitter_px
    return make_background(
        np.random.default_rng(sim.background_seed),
        config.width + 2 * margin,
        config.height + 2 * margin,
    )


def _write_sequence(
    seq_dir: Path, split: str, seed: int, index: int, config: SynthConfig, bar: tqdm
) -> SequenceSummary:
    sim = build_sequence(seed, index, config)
    background = sequence_background(sim, config)
    for frame, scene in enumerate(sim.frames, start=1):
        img = render_frame(scene, background, margin=config.jitter_px)
        _write_jpeg(seq_dir / "img1" / f"{frame:06d}.jpg", img, config.jpeg_quality)
        bar.update(1)
    gt, pairs = sequence_gt(sim, config.width, config.height)
    det = make_detections(_rng(seed, 2, index), gt, config.frames, config.width, config.height)
    write_mot_txt(seq_dir / "gt" / "gt.txt", gt, kind="gt")
    write_mot_txt(seq_dir / "det" / "det.txt", det, kind="det")
    info = SeqInfo(
        name=seq_dir.name,
        seq_length=config.frames,
        frame_rate=float(config.frame_rate),
        im_width=config.width,
        im_height=config.height,
    )
    write_seqinfo(seq_dir / "seqinfo.ini", info)
    return SequenceSummary(
        split, seq_dir.name, config.frames, len(gt), len(np.unique(gt.ids)), len(det), pairs
    )


def _crowdhuman_image(
    rng: np.random.Generator, index: int, config: SynthConfig
) -> tuple[CrowdHumanImage, np.ndarray]:
    """One still image and its odgt annotation (persons, plus posters as masks)."""
    scene = simulate_still(rng, config)
    img = render_frame(scene, make_background(rng, config.width, config.height))
    token = format(int(rng.integers(2**60)), "015x")
    boxes: list[CrowdHumanBox] = []
    for label in label_scene(scene, config.width, config.height):
        if label.visible_xyxy is None:
            continue  # nothing of it shows: cannot be annotated
        x, y, w, h = _rounded_tlwh(label.box_xyxy)
        # Rasterised pixels can poke one pixel past the rounded full-body box.
        vx0, vy0 = max(label.visible_xyxy[0], x), max(label.visible_xyxy[1], y)
        vx1, vy1 = min(label.visible_xyxy[2], x + w), min(label.visible_xyxy[3], y + h)
        if vx1 - vx0 < 1 or vy1 - vy0 < 1:
            continue
        boxes.append(
            CrowdHumanBox(
                tag="person",
                fbox_xyxy=(x, y, x + w, y + h),
                vbox_xyxy=(vx0, vy0, vx1, vy1),
                hbox_xyxy=tuple(float(round(v)) for v in label.head_xyxy),  # type: ignore[arg-type]
                box_id=len(boxes),
                extra_attrs={"occ": int(label.visibility < 0.9)},
                head_attr={"ignore": 0, "occ": int(label.head_visibility < 0.5), "unsure": 0},
            )
        )
    for occluder in scene.occluders:
        if occluder.kind == "poster":
            box = tuple(float(round(v)) for v in occluder.box_xyxy)
            boxes.append(CrowdHumanBox("mask", box, box, box, ignore=True))  # type: ignore[arg-type]
    return CrowdHumanImage(f"{index + 1:06d},{token}", tuple(boxes)), img


def _write_crowdhuman(
    out: Path, seed: int, config: SynthConfig, bar: tqdm
) -> list[CrowdHumanImage]:
    images = []
    for index in range(config.crowdhuman_images):
        image, img = _crowdhuman_image(_rng(seed, 3, index), index, config)
        _write_jpeg(out / "Images" / f"{image.image_id}.jpg", img, config.jpeg_quality)
        images.append(image)
        bar.update(1)
    write_odgt(out / "annotation_train.odgt", images)
    return images


_README = """\
Synthetic tracking data written by `qdtrack data synth --seed {seed}` (format {version}).
Deterministic: the same seed and sizes give byte-identical files.

train/<SEQ>/ and val/<SEQ>/   MOTChallenge (MOT17) sequences: {frames} frames each,
                              {width}x{height} pixels, {fps} fps
  img1/000001.jpg ...         frames (JPEG)
  gt/gt.txt                   frame,id,left,top,width,height,flag=1,class=1,visibility
                              visibility = fraction of the figure not hidden by figures or
                              the pole in front of it; boxes are full-body and may extend
                              outside the image
  det/det.txt                 public detections derived from gt (jitter, occlusion-driven
                              misses, false positives):
                              frame,-1,left,top,width,height,score,-1,-1,-1
  seqinfo.ini                 MOTChallenge sequence info
crowdhuman/Images/<ID>.jpg    {crowd} still images with several figures
crowdhuman/annotation_train.odgt  CrowdHuman odgt: fbox (full body), vbox (visible), hbox
                              (head); posters showing people are tag "mask" (extra.ignore=1)
manifest.json                 seed, sizes and per-sequence counts; "lookalike_pairs" lists
                              gt ids of same-shape figures whose paths cross (appearance differs)
"""


def _write_readme_and_manifest(out: Path, summary: SynthSummary) -> None:
    config = summary.config
    with atomic_write(out / "README.txt") as handle:
        handle.write(
            _README.format(
                seed=summary.seed,
                version=FORMAT_VERSION,
                frames=config.frames,
                width=config.width,
                height=config.height,
                fps=config.frame_rate,
                crowd=config.crowdhuman_images,
            )
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "seed": summary.seed,
        "config": asdict(config),
        "sequences": [
            {**asdict(s), "lookalike_pairs": [list(p) for p in s.lookalike_pairs]}
            for s in summary.sequences
        ],
        "crowdhuman": {
            "images": summary.crowdhuman_images,
            "persons": summary.crowdhuman_persons,
            "masks": summary.crowdhuman_masks,
        },
    }
    write_json(out / "manifest.json", manifest)


def generate(
    out_dir: str | Path, config: SynthConfig | None = None, seed: int = 0, *, progress: bool = False
) -> SynthSummary:
    """Write the whole synthetic dataset under ``out_dir``.

    Args:
        out_dir: output folder (created; existing files with the same names are replaced).
        config: sizes; ``None`` -> :class:`SynthConfig` defaults.
        seed: non-negative integer seed.
        progress: show a tqdm progress bar on stderr.

    Returns:
        Counts of what was written.
    """
    config = config or SynthConfig()
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out_dir)
    splits = ["train"] * config.train_seqs + ["val"] * config.val_seqs
    total = len(splits) * config.frames + config.crowdhuman_images
    sequences = []
    with tqdm(total=total, desc="synth", unit="img", file=sys.stderr, disable=not progress) as bar:
        for index, split in enumerate(splits, start=1):
            seq_dir = out / split / f"SYNTH-{index:02d}"
            sequences.append(_write_sequence(seq_dir, split, seed, index, config, bar))
        images = _write_crowdhuman(out / "crowdhuman", seed, config, bar)
    summary = SynthSummary(
        out_dir=str(out),
        seed=seed,
        sequences=tuple(sequences),
        crowdhuman_images=len(images),
        crowdhuman_persons=sum(b.tag == "person" for i in images for b in i.boxes),
        crowdhuman_masks=sum(b.tag == "mask" for i in images for b in i.boxes),
        config=config,
    )
    _write_readme_and_manifest(out, summary)
    return summary


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """A :class:`SynthConfig` from CLI arguments; ``None`` values keep the defaults."""
    overrides = {
        "train_seqs": getattr(args, "train_seqs", None),
        "val_seqs": getattr(args, "val_seqs", None),
        "frames": getattr(args, "frames", None),
        "crowdhuman_images": getattr(args, "crowdhuman_images", None),
    }
    return SynthConfig(**{k: v for k, v in overrides.items() if v is not None})


def main(args: argparse.Namespace) -> int:
    """``qdtrack data synth``: write the dataset and print one summary line."""
    summary = generate(args.out, config_from_args(args), int(args.seed), progress=True)
    sys.stdout.write(
        f"synth: wrote {len(summary.sequences)} sequences ({summary.frames} frames, "
        f"{summary.gt_boxes} gt boxes, {summary.ids} ids) and {summary.crowdhuman_images} "
        f"CrowdHuman images ({summary.crowdhuman_persons} persons) to {summary.out_dir}\n"
    )
    return 0


__all__ = [
    "DetectionNoise",
    "FigureLabel",
    "FigureLook",
    "FigureState",
    "Occluder",
    "SceneState",
    "SequenceSim",
    "SequenceSummary",
    "SynthConfig",
    "SynthSummary",
    "build_sequence",
    "config_from_args",
    "detection_recall",
    "figure_parts",
    "generate",
    "label_scene",
    "main",
    "make_background",
    "make_detections",
    "perspective_height",
    "render_frame",
    "sequence_background",
    "sequence_gt",
    "simulate_sequence",
    "simulate_still",
]
