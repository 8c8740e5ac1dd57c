"""The champion/challenger gate (``qdtrack gate``) and the report when it blocks.

``gate`` compares the candidate's summary with ``gate.criteria`` of the config and, by
``gate.max_drop``, with the metrics of the model currently deployed, read from
``<model repository>/<deploy.model_name>/champion.json`` on the model-repository volume
(written by ``qdtrack deploy``). A blocked candidate is a decision, not a failure of the
step: ``--passed-output`` writes ``true`` or ``false`` to the output parameter ``passed``
that the pipeline branches on with ``dsl.If``, and the command exits 0 for both; any
other non-zero exit (bad input) fails the step. The decision JSON (``passed``,
``reasons``, both metric sets) is an artifact: deploy requires it, and
``report_not_deployed`` prints its reasons.
"""

from typing import NamedTuple

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Output, OutputPath

from components import CLI, IMAGE

MODEL_REPOSITORY_MOUNT = "/models"
"""Where the pipeline mounts the Triton model-repository PVC (gate and deploy)."""


@dsl.container_component
def gate(
    summary: Input[Artifact],
    decision: Output[Artifact],
    passed: OutputPath(bool),  # type: ignore[valid-type]
    config: str = "params.yaml",
    overrides: list = [],  # noqa: B006  (KFP reads the default; it is never mutated)
    model_repository: str = MODEL_REPOSITORY_MOUNT,
) -> dsl.ContainerSpec:
    """``qdtrack gate``: may the candidate replace the deployed model?

    Args:
        summary: the candidate's summary JSON (``evaluate``).
        decision: the decision JSON.
        passed: ``true`` when deployable, ``false`` when blocked.
        model_repository: where the model-repository volume is mounted
            (``deploy.model_repository``).
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=CLI,
        args=[
            "gate",
            "--config", config,
            "--set", overrides,
            "--set", dsl.ConcatPlaceholder(["deploy.model_repository=", model_repository]),
            "--candidate", summary.path,
            "--out", decision.path,
            "--passed-output", passed,
        ],
    )  # fmt: skip


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def report_not_deployed(decision: Input[Artifact], report: Output[Markdown]) -> NamedTuple(  # type: ignore[valid-type]
    "Report", [("message", str)]
):
    """The blocked branch: say why nothing was deployed (log, Markdown for the UI, output)."""
    import json
    import logging
    from collections import namedtuple

    with open(decision.path, encoding="utf-8") as handle:
        doc = json.load(handle)
    reasons = doc.get("reasons") or ["no reason recorded"]
    champion = "the deployed model" if doc.get("champion") else "no deployed model"
    message = f"not deployed (gate failed against {champion}): " + "; ".join(reasons)
    logging.getLogger("qdtrack.pipeline").warning("%s", message)
    with open(report.path, "w", encoding="utf-8") as handle:
        handle.write("## Not deployed\n\nThe gate blocked this candidate:\n\n")
        handle.writelines(f"- {reason}\n" for reason in reasons)
    Report = namedtuple("Report", ["message"])
    return Report(message)
