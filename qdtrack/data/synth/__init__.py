"""Deterministic synthetic MOTChallenge + CrowdHuman data: the project's embedded default data.

People-like figures (head, torso with a clothing pattern, arms, legs) walk over a textured
background with smooth random velocities, enter and leave the frame, occlude each other by
depth and pass behind a pole. Their height follows a simple ground-plane perspective
(feet lower in the image -> taller figure) and a small camera jitter shifts everything.
Each sequence contains "look-alike pairs": two figures of the same size and shape whose
paths cross at close range, so position / IoU alone can swap them; only their clothing
colours tell them apart.

A multi-class mode (``SynthConfig.num_classes`` 2..4, ``--classes``) adds cars, dogs and
balls (category ids 2, 3, 4; persons are 1) for the TAO / LVIS path: the sequences also
get TAO annotation files and the stills are LVIS-style. With one class every file is
byte-identical to the people-only generator.

The pipeline is split into pure pieces, one module each:

* ``config``: :class:`SynthConfig` (sizes, validated) and the :class:`SynthSummary` counts;
* ``scene``: scene states (figures, occluders, appearance) and the ground-plane perspective;
* ``simulate``: :func:`simulate_sequence` / :func:`simulate_still` -> scene states (no pixels);
* ``geometry``: parts of every class and fixed-point silhouettes shared by rendering and
  labelling;
* ``labels``: :func:`label_scene` -> full-body boxes and visibility of each figure,
  :func:`sequence_gt` and :func:`make_detections` -> MOT17 gt and noisy public detections;
* ``render``: :func:`render_frame` -> a BGR image of one scene;
* ``coco``: :func:`tao_json` / :func:`lvis_json` -> the multi-class TAO and LVIS files;
* ``writer``: :func:`generate` writes everything; :func:`main` is the ``qdtrack data synth``
  handler.

Same seed and config -> byte-identical files.
"""

from __future__ import annotations

from qdtrack.data.synth.coco import LvisStill, TaoVideo, lvis_json, tao_json
from qdtrack.data.synth.config import (
    ClassCount,
    SequenceSummary,
    SynthConfig,
    SynthSummary,
    config_from_args,
)
from qdtrack.data.synth.geometry import figure_parts, object_parts
from qdtrack.data.synth.labels import (
    DetectionNoise,
    FigureLabel,
    SequenceLabels,
    detection_recall,
    label_scene,
    label_sequence,
    make_detections,
    sequence_gt,
)
from qdtrack.data.synth.render import make_background, render_frame
from qdtrack.data.synth.scene import (
    CATEGORY_NAMES,
    BallLook,
    CarLook,
    DogLook,
    FigureLook,
    FigureState,
    Look,
    Occluder,
    SceneState,
    SequenceSim,
    perspective_height,
)
from qdtrack.data.synth.simulate import simulate_sequence, simulate_still
from qdtrack.data.synth.writer import build_sequence, generate, main, sequence_background

__all__ = [
    "CATEGORY_NAMES",
    "BallLook",
    "CarLook",
    "ClassCount",
    "DetectionNoise",
    "DogLook",
    "FigureLabel",
    "FigureLook",
    "FigureState",
    "Look",
    "LvisStill",
    "Occluder",
    "SceneState",
    "SequenceLabels",
    "SequenceSim",
    "SequenceSummary",
    "SynthConfig",
    "SynthSummary",
    "TaoVideo",
    "build_sequence",
    "config_from_args",
    "detection_recall",
    "figure_parts",
    "generate",
    "label_scene",
    "label_sequence",
    "lvis_json",
    "main",
    "make_background",
    "make_detections",
    "object_parts",
    "perspective_height",
    "render_frame",
    "sequence_background",
    "sequence_gt",
    "simulate_sequence",
    "simulate_still",
    "tao_json",
]
