"""Deploy: ``qdtrack deploy`` publishes the export and makes every Triton replica serve it.

The step mounts the Triton model-repository volume and copies the export into
``<repository>/<deploy.model_name>/<N>/`` (with ``config.pbtxt``). It then lists the pods
behind the ``triton_service`` Service (its EndpointSlices; the deployer's Role in
``k8s/base/deployer-rbac.yaml``), asks **each** pod to load the model through Triton's
model-control API (``--http-restricted-api``: the key comes from a Secret, as
``$TRITON_MODEL_CONTROL_KEY``), waits while it loads, and checks that each one answers an
inference with version N. Only then is the version recorded as the champion
(``champion.json``, what the next run's gate compares with). A refusal on any replica
removes the version again and brings every replica back to the previous one.

The pipeline labels this step's pod ``qdtrack.io/deployer=true``: the serving pods'
NetworkPolicy admits Triton's HTTP port from that label only. ``qdtrack deploy`` itself
refuses unless the gate decision passed, so a blocked candidate is never published.
"""

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components import CLI, IMAGE
from components.gate import MODEL_REPOSITORY_MOUNT

DEPLOYER_LABEL = ("qdtrack.io/deployer", "true")
"""The pod label the serving pods' NetworkPolicy admits to Triton's HTTP port."""
MODEL_CONTROL_KEY = {"key": "TRITON_MODEL_CONTROL_KEY"}
"""Secret key -> environment variable of the model-control key (``qdtrack.rollout``)."""


@dsl.container_component
def deploy(
    exported: Input[Model],
    summary: Input[Artifact],
    decision: Input[Artifact],
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    triton_service: str = "",
    model_repository: str = MODEL_REPOSITORY_MOUNT,
    timeout_s: int = 1800,
) -> dsl.ContainerSpec:
    """``qdtrack deploy`` into the mounted model repository, then onto every replica.

    Args:
        triton_service: ``NAMESPACE/SERVICE`` of the serving pods' Triton Service, e.g.
            ``qdtrack/triton`` ("" = publish only and record the champion at once).
        timeout_s: how long each replica may take to load and answer (engine builds).
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
            "--triton-service", triton_service,
            "--timeout", timeout_s,
        ],
    )  # fmt: skip
