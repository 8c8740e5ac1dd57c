"""Data steps: ``qdtrack data prepare`` (dataset) and ``qdtrack data convert`` (val split).

``prepare_data`` mirrors the ``data`` stage of ``dvc.yaml``. With ``dvc_targets`` set it
first runs ``dvc pull`` inside the image, which holds the repository (``dvc.yaml``,
``dvc.lock``, ``datasets/*.dvc``) but no ``.git``: DVC is told so with
``core.no_scm`` (platform notes 7.3). The data identity is therefore the ``dvc.lock``
of the image's commit, and the image reference is part of KFP's cache key, so KFP
caching and DVC agree. Remote credentials come from a Secret as environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_ENDPOINT_URL`` for
MinIO), set by the pipeline with ``kfp.kubernetes.use_secret_as_env``.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import IMAGE
from components._shell import OVERRIDES_TO_SET_FLAGS, command, scratch_tree

_PREPARE = f"""
config=$(realpath "$1"); overrides=$2; targets=$3; remote=$4; dataset=$5
if [ -n "$targets" ]; then
  dvc config --local core.no_scm true
  dvc config --local core.analytics false
  if [ -n "$remote" ]; then
    dvc remote add --local --force --default pipeline "$remote"
    if [ -n "${{AWS_ENDPOINT_URL:-}}" ]; then
      dvc remote modify --local pipeline endpointurl "$AWS_ENDPOINT_URL"
    fi
  fi
  dvc pull $targets
fi
{OVERRIDES_TO_SET_FLAGS}
qdtrack data prepare --config "$config" "$@" --out "$dataset"
"""


@dsl.container_component
def prepare_data(
    dataset: Output[Dataset],
    config: str = "params.yaml",
    overrides: str = "",
    dvc_targets: str = "",
    dvc_remote: str = "",
) -> dsl.ContainerSpec:
    """``qdtrack data prepare``: the synthetic default, or a dataset pulled with DVC.

    Args:
        dataset: ``train/``, ``val/``, ``crowdhuman/`` and ``manifest.json``.
        config: params file inside the image.
        overrides: space-separated ``KEY=VALUE`` (``--set``), e.g.
            ``data.source=path data.path=datasets/MOT17``.
        dvc_targets: ``dvc pull`` these first (space-separated; empty: no pull).
        dvc_remote: remote URL to pull from (empty: the image's default remote).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_PREPARE, "prepare-data"),
        args=[config, overrides, dvc_targets, dvc_remote, dataset.path],
    )


_CONVERT = f"""
config=$(realpath "$1"); overrides=$2; dataset=$3; converted=$4
{OVERRIDES_TO_SET_FLAGS}
{scratch_tree(("dataset", "data/dataset"))}
qdtrack data convert --config "$config" "$@" --data data/dataset --out "$converted"
"""


@dsl.container_component
def convert_data(
    dataset: Input[Dataset],
    converted: Output[Dataset],
    config: str = "params.yaml",
    overrides: str = "",
) -> dsl.ContainerSpec:
    """``qdtrack data convert``: ``val_gt/``, ``val.json`` and ``stats.json``.

    Runs where ``data/dataset`` is the input, so ``val.json`` lists the validation
    sequences as ``data/dataset/...``, the layout every later step recreates.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_CONVERT, "convert-data"),
        args=[config, overrides, dataset.path, converted.path],
    )
