"""Data steps: ``qdtrack data prepare`` (dataset) and ``qdtrack data convert`` (val split).

Both write onto the workspace volume (``--store <workspace>/data``), into a folder named by
a fingerprint of their inputs (:mod:`qdtrack.data.store`), and output the folder's *path*
as a string parameter: later steps mount the same volume and read the data in place,
instead of KFP copying a dataset artifact to the object store and into every pod. Both
run every time (no KFP cache: the folder must still be on the volume) but reuse a folder
that is already there, so they pass the same path on and ``train`` is served from KFP's
cache when nothing changed.

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
from kfp.dsl import OutputPath

from components import CLI, IMAGE, WORKSPACE_MOUNT


@dsl.container_component
def prepare_data(
    dataset_path: OutputPath(str),  # type: ignore[valid-type]
    workspace: str = WORKSPACE_MOUNT,
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    dvc_targets: str = "",
    dvc_remote: str = "",
) -> dsl.ContainerSpec:
    """``qdtrack data prepare``: the synthetic default, or a dataset pulled with DVC.

    Args:
        dataset_path: the dataset folder on the workspace volume (``train/``, ``val/``,
            ``crowdhuman/`` and ``manifest.json``).
        workspace: where the workspace volume is mounted.
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
            "--store", dsl.ConcatPlaceholder([workspace, "/data"]),
            "--path-output", dataset_path,
        ],
    )  # fmt: skip


@dsl.container_component
def convert_data(
    dataset: str,
    converted_path: OutputPath(str),  # type: ignore[valid-type]
    workspace: str = WORKSPACE_MOUNT,
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006
) -> dsl.ContainerSpec:
    """``qdtrack data convert``: ``val_gt/``, ``val.json`` and ``stats.json``.

    Runs where ``data/dataset`` links to the dataset folder, so ``val.json`` lists the
    validation sequences as ``data/dataset/...``, the layout every later step recreates.

    Args:
        dataset: the dataset folder (``prepare_data``'s ``dataset_path``).
        converted_path: the folder written on the workspace volume.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "--link", dsl.ConcatPlaceholder(["data/dataset=", dataset]),
            "data", "convert",
            "--config", config,
            "--set", overrides,
            "--data", "data/dataset",
            "--store", dsl.ConcatPlaceholder([workspace, "/data"]),
            "--path-output", converted_path,
        ],
    )  # fmt: skip
