"""Simulation of synthetic scenes: walkers, look-alike pairs, a pole and camera jitter.

Walkers move with smooth random velocities, enter and leave through the image sides and
keep their feet on the ground plane. Each sequence contains "look-alike pairs": two
figures of the same size and shape whose paths cross at close range, so position / IoU
alone can swap them; only their clothing colours tell them apart. Everything here is
pure: the result depends only on the generator state and the config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qdtrack.data.synth.config import SynthConfig
from qdtrack.data.synth.scene import (
    PERSON_SCALE,
    FigureLook,
    FigureState,
    Occluder,
    SceneState,
    SequenceSim,
    foot_limits,
    hsv_bgr,
    lookalike_of,
    perspective_height,
    random_look,
)

# Walking speed range in pixels per frame for a figure at the bottom of the image.
_WALK_SPEED = (2.0, 4.5)


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


_PairStart = tuple[int, _Agent, _Agent]  # (0-based start frame, agent a, agent b)


def _random_phase(rng: np.random.Generator) -> float:
    """A uniform walking phase in radians."""
    return float(rng.uniform(0, 2 * np.pi))


def _random_depth(
    rng: np.random.Generator, image_height: int, far_margin: float, near_margin: float
) -> float:
    """A foot row inside the walking band, away from its far and near ends (fractions)."""
    y_lo, y_hi = foot_limits(image_height)
    return float(rng.uniform(y_lo + far_margin * (y_hi - y_lo), y_hi - near_margin * (y_hi - y_lo)))


def _depth_scale(y: float, image_height: int) -> float:
    """Perspective height at row ``y`` relative to a figure on the bottom row."""
    return perspective_height(y, image_height) / (PERSON_SCALE * image_height)


def _walk_speed(rng: np.random.Generator, y: float, image_height: int) -> float:
    """A random preferred walking speed for a free walker at row ``y``."""
    return float(rng.uniform(*_WALK_SPEED)) * _depth_scale(y, image_height) + 0.8


def _agent_height(agent: _Agent, image_height: int) -> float:
    """Height in pixels of the agent's figure."""
    return perspective_height(agent.y, image_height, agent.look.size)


def _half_width(agent: _Agent, image_height: int) -> float:
    """Generous half-width of the agent's figure (arms swinging included)."""
    return (agent.look.build + 0.12) * _agent_height(agent, image_height)


def _crowd_size(rng: np.random.Generator, config: SynthConfig) -> int:
    """A random number of figures to keep in view."""
    return int(rng.integers(config.min_figures, config.max_figures + 1))


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
    y_lo, y_hi = foot_limits(config.height)
    look = random_look(rng)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    agent = _Agent(track_id, look, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, _random_phase(rng))
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
    speed = _walk_speed(rng, agent.y, config.height)
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
) -> _PairStart:
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
    yc = _random_depth(rng, config.height, 0.25, 0.15)
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
        phase = _random_phase(rng)
        agents.append(_Agent(tid, look, xc + vx * dt, y + vy * dt, vx, vy, vx, vy, phase, True))
    return start, agents[0], agents[1]


def _step(agent: _Agent, rng: np.random.Generator, config: SynthConfig) -> None:
    """Advance one frame: smooth random velocity for walkers, straight line for pairs."""
    if not agent.scripted:
        if rng.random() < 0.03:  # occasionally pick a new preferred velocity
            direction = float(np.sign(agent.pref_vx) or 1.0)
            agent.pref_vx = direction * _walk_speed(rng, agent.y, config.height)
            agent.pref_vy = float(rng.normal(0.0, 0.25))
        agent.vx += 0.15 * (agent.pref_vx - agent.vx) + float(rng.normal(0.0, 0.12))
        agent.vy += 0.15 * (agent.pref_vy - agent.vy) + float(rng.normal(0.0, 0.05))
        y_lo, y_hi = foot_limits(config.height)
        if not y_lo <= agent.y + agent.vy <= y_hi:
            agent.vy, agent.pref_vy = -agent.vy, -agent.pref_vy
    agent.x += agent.vx
    agent.y += agent.vy
    agent.phase += abs(agent.vx) / max(0.12 * _agent_height(agent, config.height), 1.0)


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
    """A vertical pole standing on the ground, reaching above the image."""
    depth = _random_depth(rng, config.height, 0.3, 0.15)
    x = float(rng.uniform(0.15, 0.85)) * config.width
    half = max(2.0, 0.035 * perspective_height(depth, config.height))
    gray = int(rng.integers(50, 110))
    return Occluder("pole", (x - half, -2.0, x + half, depth), depth, (gray, gray, gray + 10))


def _to_image(agent: _Agent, shift: tuple[int, int], config: SynthConfig) -> FigureState:
    """The agent as a figure in image pixels, camera shift included."""
    h = _agent_height(agent, config.height)
    return FigureState(
        agent.track_id, agent.look, agent.x + shift[0], agent.y + shift[1], h, agent.phase
    )


def _shift_occluder(occluder: Occluder, shift: tuple[int, int]) -> Occluder:
    """The occluder moved by the camera shift."""
    x0, y0, x1, y1 = occluder.box_xyxy
    dx, dy = shift
    return replace(
        occluder, box_xyxy=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), depth_y=occluder.depth_y + dy
    )


def _pairs_starting(pairs: list[_PairStart], frame: int) -> list[_Agent]:
    """Agents of the look-alike pairs that enter at ``frame``."""
    return [a for start, *pair in pairs if start == frame for a in pair]


def simulate_sequence(rng: np.random.Generator, config: SynthConfig) -> SequenceSim:
    """Simulate one sequence: walkers, look-alike pairs, a pole and camera jitter.

    Pure: the result depends only on the generator state and ``config``.
    """
    next_id = 1
    pairs: list[_PairStart] = []
    n_pairs = max(1, config.frames // 50)
    for k in range(n_pairs):
        pairs.append(_lookalike_pair(rng, (next_id, next_id + 1), config, (k, n_pairs)))
        next_id += 2
    alive = _pairs_starting(pairs, 0)
    wanted = _crowd_size(rng, config)
    for _ in range(max(wanted - sum(_in_view(a, config) for a in alive), 0)):
        alive.append(_new_walker(rng, next_id, config, alive, at_edge=False))
        next_id += 1
    pole = _pole(rng, config)
    shifts = _camera_shifts(rng, config.frames, config.jitter_px)
    frames = []
    for t in range(config.frames):
        if t > 0:
            alive.extend(_pairs_starting(pairs, t))
        if rng.random() < 0.03:  # the crowd size drifts between min and max
            wanted = _crowd_size(rng, config)
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
    y_lo, y_hi = foot_limits(config.height)
    figures = []
    for track_id in range(1, int(rng.integers(4, 13)) + 1):
        y = float(rng.uniform(y_lo, y_hi + 0.1 * config.height))
        look = random_look(rng)
        h = perspective_height(y, config.height, look.size)
        x = float(rng.uniform(-0.05, 1.05)) * config.width
        figures.append(FigureState(track_id, look, x, y, h, _random_phase(rng)))
    occluders = []
    if rng.random() < 0.5:
        occluders.append(_pole(rng, config))
    if rng.random() < 0.35:  # a poster showing people: annotated as an ignore ("mask") region
        depth = float(rng.uniform(y_lo, y_lo + 0.3 * (y_hi - y_lo)))
        w, h = float(rng.uniform(50, 100)), float(rng.uniform(40, 70))
        x0 = float(rng.uniform(0, config.width - w))
        color = hsv_bgr(rng.random(), 0.2, 0.9)
        occluders.append(
            Occluder(
                "poster", (x0, depth - h, x0 + w, depth), depth, color, int(rng.integers(2**31))
            )
        )
    return SceneState(tuple(figures), tuple(occluders))


__all__ = ["simulate_sequence", "simulate_still"]
