"""Data steps: ``qdtrack data prepare`` (dataset) and ``qdtrack data convert`` (val split).

``prepare_data`` is the ``data`` stage of ``dvc.yaml``. With ``dvc_targets`` set it first
runs ``dvc pull`` (``--dvc-pull``) inside the image, which holds the repository
(``dvc.yaml``, ``dvc.lock``, ``datasets/*.dvc``) but no ``.git``: the CLI tells DVC so
(``core.no_scm``). The data identity is therefore the ``dvc.lock`` of the image's commit,
and the image reference is part of KFP's cache key, so KFP caching and DVC agree. Remote
credentials come from a Secret as environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, optional ``AWS_ENDPOINT_URL`` for MinIO), set by the pipeline
with ``kfp.kubernetes.use_secret_as_env``.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import CLI, IMAGE


@dsl.container_component
def prepare_data(
    dataset: Output[Dataset],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    dvc_targets: str = "",
    dvc_remote: str = "",
) -> dsl.ContainerSpec:
    """``qdtrack data prepare``: the synthetic default, or a dataset pulled with DVC.

    Args:
        dataset: ``train/``, ``val/``, ``crowdhuman/`` and ``manifest.json``.
        config: params file in the image (or on a mounted volume).
        overrides: ``KEY=VALUE`` settings, e.g. ``["data.source=path",
            "data.path=datasets/MOT17"]``.
        dvc_targets: ``dvc pull`` these first (space-separated; empty: no pull).
        dvc_remote: remote URL to pull from (empty: the image's default remote).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "data", "prepare",
            "--config", config,
            "--set", overrides,
            "--dvc-pull", dvc_targets,
            "--dvc-remote", dvc_remote,
            "--out", dataset.path,
        ],
    )  # fmt: skip


@dsl.container_component
def convert_data(
    dataset: Input[Dataset],
    converted: Output[Dataset],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006
) -> dsl.ContainerSpec:
    """``qdtrack data convert``: ``val_gt/``, ``val.json`` and ``stats.json``.

    Runs where ``data/dataset`` is the input, so ``val.json`` lists the validation
    sequences as ``data/dataset/...``, the layout every later step recreates.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "--link", dsl.ConcatPlaceholder(["data/dataset=", dataset.path]),
            "data", "convert",
            "--config", config,
            "--set", overrides,
            "--data", "data/dataset",
            "--out", converted.path,
        ],
    )  # fmt: skip
