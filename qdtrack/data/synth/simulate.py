"""Simulation of synthetic scenes: walkers, look-alike pairs, a pole and camera jitter.

Walkers move with smooth random velocities, enter and leave through the image sides and
keep their feet on the ground plane. Each sequence contains "look-alike pairs": two
figures of the same class, size and shape whose paths cross at close range, so position /
IoU alone can swap them; only their colours tell them apart. In the multi-class mode
each new figure (or pair) takes the class spawned least so far in the sequence (ties
broken at random), so classes are balanced in track counts; cars drive straight and
fast, dogs trot and wander, balls roll or bounce. Everything here is pure: the result
depends only on the generator state and the config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qdtrack.data.synth.config import SynthConfig
from qdtrack.data.synth.scene import (
    BALL,
    CAR,
    DOG,
    PERSON,
    PERSON_SCALE,
    FigureState,
    Look,
    Occluder,
    SceneState,
    SequenceSim,
    foot_limits,
    hsv_bgr,
    lookalike_look,
    perspective_height,
    random_object_look,
)

# Walking speed range in pixels per frame for a figure at the bottom of the image.
_WALK_SPEED = (2.0, 4.5)


@dataclass(frozen=True)
class _Motion:
    """How a class moves: speed factor and the noise of its velocity (pixels per frame)."""

    speed: float  # multiplies a person's walking speed
    vy_std: float  # std of the preferred vertical (depth) velocity
    vx_noise: float  # per-frame noise of the horizontal velocity
    vy_noise: float  # per-frame noise of the vertical velocity


# The person entry reproduces the single-class generator's numbers exactly.
_MOTION = {
    PERSON: _Motion(speed=1.0, vy_std=0.25, vx_noise=0.12, vy_noise=0.05),
    CAR: _Motion(speed=2.2, vy_std=0.04, vx_noise=0.05, vy_noise=0.01),
    DOG: _Motion(speed=1.4, vy_std=0.4, vx_noise=0.25, vy_noise=0.08),
    BALL: _Motion(speed=1.5, vy_std=0.3, vx_noise=0.06, vy_noise=0.03),
}


@dataclass
class _Agent:
    """Mutable walker state inside :func:`simulate_sequence` (ground coordinates)."""

    track_id: int
    look: Look
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
    """Generous half-width of the agent's figure (a person's swinging arms included)."""
    return agent.look.half_width(_agent_height(agent, image_height))


def _motion(agent: _Agent) -> _Motion:
    """How the agent's class moves."""
    return _MOTION[agent.look.category_id]


def _next_category(rng: np.random.Generator, spawned: list[int], count: int = 1) -> int:
    """The class spawned least so far (ties at random); ``spawned`` counts per class.

    With one class nothing is drawn from ``rng``, so the single-class mode consumes the
    random stream exactly as before classes existed.
    """
    if len(spawned) == 1:
        spawned[0] += count
        return PERSON
    fewest = min(spawned)
    candidates = [k for k, n in enumerate(spawned) if n == fewest]
    pick = candidates[int(rng.integers(len(candidates)))]
    spawned[pick] += count
    return pick + 1


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
    category: int = PERSON,
) -> _Agent:
    """A free walker: inside the frame at the start, or just outside an edge walking in.

    A few placements are tried so that it does not start on top of a figure walking the
    same way (two such figures would overlap for the rest of their lives).
    """
    y_lo, y_hi = foot_limits(config.height)
    look = random_object_look(rng, category)
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
    motion = _motion(agent)
    speed = _walk_speed(rng, agent.y, config.height) * motion.speed
    agent.pref_vx = agent.vx = direction * speed
    agent.pref_vy = agent.vy = float(rng.normal(0.0, motion.vy_std))
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
    rng: np.random.Generator,
    ids: tuple[int, int],
    config: SynthConfig,
    slot: tuple[int, int],
    category: int = PERSON,
) -> _PairStart:
    """Two look-alikes of class ``category`` on straight paths that meet at one frame.

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
    speed *= _MOTION[category].speed
    look_a = random_object_look(rng, category)
    look_b = lookalike_look(look_a, rng)
    va, vb, gap = _pair_velocities(rng, speed)
    # Start once the slower of them could have walked in from an edge, or at frame 0.
    start = max(0, meet - round((config.width * 0.5 + 40) / speed))
    agents = []
    for tid, look, (vx, vy), y in ((ids[0], look_a, va, yc + gap), (ids[1], look_b, vb, yc - gap)):
        dt = start - meet
        phase = _random_phase(rng)
        agents.append(_Agent(tid, look, xc + vx * dt, y + vy * dt, vx, vy, vx, vy, phase, True))
    return start, agents[0], agents[1]


def _phase_step(agent: _Agent, height: float) -> float:
    """Phase advance of one frame: stride of legs, or rotation of wheels and balls."""
    category = agent.look.category_id
    if category == PERSON:
        return abs(agent.vx) / max(0.12 * height, 1.0)
    if category == DOG:
        return abs(agent.vx) / max(0.1 * height, 1.0)
    radius = 0.2 * height if category == CAR else 0.5 * height  # wheel or ball radius
    return agent.vx / max(radius, 1.0)  # signed: rolls the way it moves


def _step(agent: _Agent, rng: np.random.Generator, config: SynthConfig) -> None:
    """Advance one frame: smooth random velocity for walkers, straight line for pairs."""
    if not agent.scripted:
        motion = _motion(agent)
        if rng.random() < 0.03:  # occasionally pick a new preferred velocity
            direction = float(np.sign(agent.pref_vx) or 1.0)
            speed = _walk_speed(rng, agent.y, config.height) * motion.speed
            agent.pref_vx = direction * speed
            agent.pref_vy = float(rng.normal(0.0, motion.vy_std))
        agent.vx += 0.15 * (agent.pref_vx - agent.vx) + float(rng.normal(0.0, motion.vx_noise))
        agent.vy += 0.15 * (agent.pref_vy - agent.vy) + float(rng.normal(0.0, motion.vy_noise))
        y_lo, y_hi = foot_limits(config.height)
        if not y_lo <= agent.y + agent.vy <= y_hi:
            agent.vy, agent.pref_vy = -agent.vy, -agent.pref_vy
    agent.x += agent.vx
    agent.y += agent.vy
    agent.phase += _phase_step(agent, _agent_height(agent, config.height))


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
    facing = 1.0 if agent.pref_vx >= 0 else -1.0
    return FigureState(
        agent.track_id, agent.look, agent.x + shift[0], agent.y + shift[1], h, agent.phase, facing
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
    spawned = [0] * config.num_classes  # figures per class so far, for the balance
    pairs: list[_PairStart] = []
    n_pairs = max(1, config.frames // 50)
    for k in range(n_pairs):
        category = _next_category(rng, spawned, 2)
        ids = (next_id, next_id + 1)
        pairs.append(_lookalike_pair(rng, ids, config, (k, n_pairs), category))
        next_id += 2
    alive = _pairs_starting(pairs, 0)
    wanted = _crowd_size(rng, config)
    for _ in range(max(wanted - sum(_in_view(a, config) for a in alive), 0)):
        category = _next_category(rng, spawned)
        alive.append(_new_walker(rng, next_id, config, alive, at_edge=False, category=category))
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
            category = _next_category(rng, spawned)
            alive.append(_new_walker(rng, next_id, config, alive, at_edge=True, category=category))
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


def _still_categories(rng: np.random.Generator, count: int, num_classes: int) -> list[int]:
    """Classes of a still's figures: a random order of the classes, repeated (balanced)."""
    if num_classes == 1:
        return [PERSON] * count  # draws nothing: single-class stills stay as they were
    order = [int(c) + 1 for c in rng.permutation(num_classes)]
    return [order[k % num_classes] for k in range(count)]


def simulate_still(rng: np.random.Generator, config: SynthConfig) -> SceneState:
    """A crowded still image with an optional pole, and a poster in the single-class mode.

    With ``config.num_classes == 1`` (CrowdHuman-style) all figures are persons and a
    poster of printed people may hang in the back; otherwise (LVIS-style) the figures
    cycle through a random order of the classes and there is no poster.
    """
    y_lo, y_hi = foot_limits(config.height)
    figures = []
    count = int(rng.integers(4, 13))
    categories = _still_categories(rng, count, config.num_classes)
    for track_id, category in enumerate(categories, start=1):
        y = float(rng.uniform(y_lo, y_hi + 0.1 * config.height))
        look = random_object_look(rng, category)
        h = perspective_height(y, config.height, look.size)
        x = float(rng.uniform(-0.05, 1.05)) * config.width
        phase = _random_phase(rng)
        facing = 1.0 if category == PERSON or rng.random() < 0.5 else -1.0
        figures.append(FigureState(track_id, look, x, y, h, phase, facing))
    occluders = []
    if rng.random() < 0.5:
        occluders.append(_pole(rng, config))
    # A poster showing people: annotated as an ignore ("mask") region in CrowdHuman; LVIS
    # has no ignore regions, so the multi-class stills go without.
    if config.num_classes == 1 and rng.random() < 0.35:
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
