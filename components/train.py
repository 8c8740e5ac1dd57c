"""Training: one pod with GPUs (``train``), or a multi-node PyTorchJob (``train_distributed``).

Both run ``qdtrack train --config params.yaml --set ... --out runs/train --resume`` in a
folder on the workspace volume named after the pipeline run, where ``data/dataset`` is
the dataset: a retried step finds ``runs/train/last.pt`` there and resumes from its last
finished epoch instead of starting over. The output artifact is a folder with
``last.pt`` and ``losses.csv``.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import IMAGE
from components._shell import OVERRIDES_TO_SET_FLAGS, command

WORKSPACE_MOUNT = "/workspace"
"""Where the pipeline mounts the workspace PVC in the training steps."""

_TRAIN = f"""
config=$(realpath "$1"); overrides=$2; device=$3; dataset=$4; workspace=$5; run_id=$6; model=$7
{OVERRIDES_TO_SET_FLAGS}
work="$workspace/qdtrack-train-$run_id"
mkdir -p "$work/data"
ln -sfn "$dataset" "$work/data/dataset"
cd "$work"
qdtrack train --config "$config" "$@" --out runs/train --device "$device" --resume
mkdir -p "$model"
cp runs/train/last.pt runs/train/losses.csv "$model/"
"""


@dsl.container_component
def train(
    dataset: Input[Dataset],
    model: Output[Model],
    run_id: str,
    config: str = "params.yaml",
    overrides: str = "",
    device: str = "cuda",
    workspace: str = WORKSPACE_MOUNT,
) -> dsl.ContainerSpec:
    """``qdtrack train`` in this pod (one or more GPUs: set them on the task)."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_TRAIN, "train"),
        args=[config, overrides, device, dataset.path, workspace, run_id, model.path],
    )


@dsl.container_component
def train_distributed(
    dataset: Input[Dataset],
    model: Output[Model],
    run_id: str,
    workspace_pvc: str,
    config: str = "params.yaml",
    overrides: str = "",
    nnodes: int = 2,
    nproc_per_node: int = 1,
    gpus_per_node: int = 1,
    namespace: str = "",
    timeout_s: int = 2 * 24 * 3600,
    workspace: str = WORKSPACE_MOUNT,
) -> dsl.ContainerSpec:
    """Launch ``qdtrack train`` as a PyTorchJob (``components/pytorchjob.py``) and wait.

    This pod needs no GPU: it stages the dataset on the workspace volume, creates (or
    re-attaches to) the job named after ``run_id``, follows it, and copies the
    checkpoint into ``model``.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "components.pytorchjob", "launch"],
        args=[
            "--dataset", dataset.path,
            "--model", model.path,
            "--run-id", run_id,
            "--config", config,
            "--overrides", overrides,
            "--image", IMAGE,
            "--nnodes", nnodes,
            "--nproc-per-node", nproc_per_node,
            "--gpus-per-node", gpus_per_node,
            "--workspace-pvc", workspace_pvc,
            "--workspace", workspace,
            "--namespace", namespace,
            "--timeout", timeout_s,
        ],
    )  # fmt: skip
