"""Tracking the validation sequences: ``qdtrack track-val`` (the ``track`` stage)."""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components import IMAGE
from components._shell import command, scratch_tree

_TRACK = f"""
dataset=$1; converted=$2; model=$3; tracker_config=$4; tracks=$5
{scratch_tree(("dataset", "data/dataset"), ("converted", "data/converted"))}
set --
if [ -n "$tracker_config" ]; then set -- --tracker-config "$tracker_config"; fi
qdtrack track-val --manifest data/converted/val.json --checkpoint "$model/last.pt" \\
  --out-dir "$tracks" "$@"
"""


@dsl.container_component
def track_val(
    dataset: Input[Dataset],
    converted: Input[Dataset],
    model: Input[Model],
    tracks: Output[Artifact],
    tracker_config: str = "",
) -> dsl.ContainerSpec:
    """Track every sequence of ``val.json`` with the candidate checkpoint.

    Args:
        tracks: ``results/``, ``iou_results/``, ``detections/``, a video per sequence and
            ``speed.json``.
        tracker_config: JSON overrides of the checkpoint's tracker settings ("" = none).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_TRACK, "track-val"),
        args=[dataset.path, converted.path, model.path, tracker_config, tracks.path],
    )
