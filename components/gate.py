"""The champion/challenger gate (``qdtrack gate``) and the report when it blocks.

``gate`` compares the candidate's summary with the absolute criteria and with the metrics
of the model currently deployed, read from ``<model repository>/<model>/champion.json``
on the model-repository volume (written by ``qdtrack deploy``). Its exit code 1 means
"blocked": that is a decision, not a failure of the step, so the script turns it into the
boolean output ``passed`` that the pipeline branches on with ``dsl.If``; any other non-zero
exit (bad input) fails the step. The decision JSON (``passed``, ``reasons``, both metric
sets) is an artifact: deploy requires it, and ``report_not_deployed`` prints its reasons.
"""

from typing import NamedTuple

# No `from __future__ import annotations` here: KFP reads the annotations when decorating.
from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Output, OutputPath

from components import IMAGE
from components._shell import command

MODEL_REPOSITORY_MOUNT = "/models"
"""Where the pipeline mounts the Triton model-repository PVC (gate and deploy)."""

_GATE = """
summary=$1; repository=$2; model_name=$3; criteria=$4; max_drop=$5; decision=$6; passed=$7
set --
if [ -n "$criteria" ]; then set -- "$@" --gate "$criteria"; fi
if [ -n "$max_drop" ]; then set -- "$@" --max-drop "$max_drop"; fi
mkdir -p "$(dirname "$decision")" "$(dirname "$passed")"
set +e
qdtrack gate --candidate "$summary" --model-repository "$repository" \\
  --model-name "$model_name" "$@" --out "$decision"
status=$?
set -e
case $status in
  0) printf true > "$passed" ;;
  1) printf false > "$passed" ;;
  *) exit "$status" ;;
esac
"""


@dsl.container_component
def gate(
    summary: Input[Artifact],
    decision: Output[Artifact],
    passed: OutputPath(bool),  # type: ignore[valid-type]
    criteria: str = "",
    max_drop: str = "",
    model_name: str = "qdtrack",
    model_repository: str = MODEL_REPOSITORY_MOUNT,
) -> dsl.ContainerSpec:
    """``qdtrack gate``: may the candidate replace the deployed model?

    Args:
        summary: the candidate's summary JSON (``evaluate``).
        decision: the decision JSON.
        passed: ``true`` when deployable, ``false`` when blocked.
        criteria: absolute criteria, e.g. ``HOTA>=40,IDF1>=40`` ("" = none).
        max_drop: allowed drop against the champion, e.g. ``HOTA=0.5,IDF1=1`` ("" = none).
        model_name: the model's folder in the repository.
        model_repository: where the model-repository volume is mounted.
    """
    return dsl.ContainerSpec(
        image=IMAGE,
        command=command(_GATE, "gate"),
        args=[
            summary.path,
            model_repository,
            model_name,
            criteria,
            max_drop,
            decision.path,
            passed,
        ],
    )


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
