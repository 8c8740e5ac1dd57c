"""Training: one pod with GPUs (``train``), or a multi-node PyTorchJob (``train_distributed``).

``train`` runs ``qdtrack train --resume`` in a folder on the workspace volume named after
the task (``{{$.pipeline_task_uuid}}``, the same for every retry of the task), where
``data/dataset`` links to the dataset folder on the same volume: a retried step (a
preempted pod) finds ``runs/train/last.pt`` there and resumes from its last finished
epoch instead of starting over. The output artifact is a folder with ``last.pt`` and
``losses.csv``.

Neither takes the run's id as an input (the task id is a placeholder of the command, not
an input): with the same dataset path, config, overrides and image, KFP's cache serves the
trained model of an earlier run instead of training again.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Model, Output

from components import CLI, IMAGE, WORKSPACE_MOUNT


@dsl.container_component
def train(
    dataset: str,
    model: Output[Model],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    device: str = "cuda",
    workspace: str = WORKSPACE_MOUNT,
) -> dsl.ContainerSpec:
    """``qdtrack train`` in this pod (one or more GPUs: set them on the task).

    Args:
        dataset: the dataset folder on the workspace volume (``prepare_data``).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "--workdir",
            dsl.ConcatPlaceholder([workspace, "/qdtrack-train/", dsl.PIPELINE_TASK_ID_PLACEHOLDER]),
            "--link", dsl.ConcatPlaceholder(["data/dataset=", dataset]),
            "train",
            "--config", config,
            "--set", overrides,
            "--out", "runs/train",
            "--device", device,
            "--resume",
            "--model-output", model.path,
        ],
    )  # fmt: skip


@dsl.container_component
def train_distributed(
    dataset: str,
    model: Output[Model],
    workspace_pvc: str,
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006
    nnodes: int = 2,
    nproc_per_node: int = 1,
    gpus_per_node: int = 1,
    namespace: str = "",
    timeout_s: int = 2 * 24 * 3600,
    workspace: str = WORKSPACE_MOUNT,
) -> dsl.ContainerSpec:
    """Launch ``qdtrack train`` as a PyTorchJob (``components/pytorchjob.py``) and wait.

    This pod needs no GPU: it links the dataset folder into the job's folder on the
    workspace volume, creates (or re-attaches to) the job named after this task (the same
    id for every retry), follows it, and copies the checkpoint into ``model``.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=["python", "-m", "components.pytorchjob", "launch"],
        args=[
            "--dataset", dataset,
            "--model", model.path,
            "--run-id", dsl.PIPELINE_TASK_ID_PLACEHOLDER,
            "--config", config,
            "--set", overrides,
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
