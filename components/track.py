"""Tracking the validation sequences: ``qdtrack track-val`` (the ``track`` stage)."""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components import CLI, IMAGE


@dsl.container_component
def track_val(
    dataset: str,
    converted: str,
    model: Input[Model],
    tracks: Output[Artifact],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
) -> dsl.ContainerSpec:
    """Track every sequence of ``val.json`` with the candidate checkpoint.

    The tracker is the config's ``tracker`` block (with the overrides); the network is
    the checkpoint's.

    Args:
        dataset: the dataset folder on the workspace volume.
        converted: the converted folder on the workspace volume (``val.json``).
        tracks: ``results/``, ``iou_results/``, ``detections/``, a video per sequence and
            ``speed.json``.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "--link", dsl.ConcatPlaceholder(["data/dataset=", dataset]),
            "--link", dsl.ConcatPlaceholder(["data/converted=", converted]),
            "track-val",
            "--config", config,
            "--set", overrides,
            "--manifest", "data/converted/val.json",
            "--checkpoint", dsl.ConcatPlaceholder([model.path, "/last.pt"]),
            "--out-dir", tracks.path,
        ],
    )  # fmt: skip
