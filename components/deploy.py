"""Deploy: ``qdtrack deploy`` publishes the export as the next version and loads it.

The step mounts the Triton model-repository volume, copies the export into
``<repository>/<deploy.model_name>/<N+1>/``, updates ``config.pbtxt`` and
``champion.json`` (what the next run's gate compares with), then asks Triton
(``--model-control-mode=explicit``) to load the model through
``POST /v2/repository/models/<model>/load``; a refused load rolls the version back.
``qdtrack deploy`` itself refuses unless the gate decision passed, so a blocked candidate
is never published even if the step were reached.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components import CLI, IMAGE
from components.gate import MODEL_REPOSITORY_MOUNT


@dsl.container_component
def deploy(
    exported: Input[Model],
    summary: Input[Artifact],
    decision: Input[Artifact],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    triton_url: str = "",
    model_repository: str = MODEL_REPOSITORY_MOUNT,
) -> dsl.ContainerSpec:
    """``qdtrack deploy`` into the mounted model repository (and Triton's load call).

    Args:
        triton_url: Triton's HTTP endpoint, e.g. ``http://triton.qdtrack:8000``
            ("" = publish only; a Triton in ``poll`` mode picks the version up itself).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "deploy",
            "--config", config,
            "--set", overrides,
            "--set", dsl.ConcatPlaceholder(["deploy.model_repository=", model_repository]),
            "--export", exported.path,
            "--metrics", summary.path,
            "--decision", decision.path,
            "--triton-url", triton_url,
        ],
    )  # fmt: skip
