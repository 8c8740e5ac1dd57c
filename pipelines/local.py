"""Run the compiled pipeline on this machine: ``kfp.local`` with container steps as processes.

``kfp.local``'s ``SubprocessRunner`` runs lightweight Python components only, and its
``DockerRunner`` needs a Docker engine. Every container step of this pipeline runs the
project's own CLI (``qdtrack ...``), which is installed here too, so this module lets the
``SubprocessRunner`` start a container step's resolved command line (its placeholders
filled in by ``kfp.local``, exactly the argv a pod would run) as a local process instead
of refusing it, records the step's output artifacts as KFP's launcher does on a cluster,
and resolves ``dsl.OneOf`` (which ``kfp.local`` does not) to the branch that ran.
Everything else is ``kfp.local`` itself: the compiled YAML is loaded
(``pipelines/qdtrack_pipeline.yaml``, not the Python definition), the DAG, ``dsl.If`` /
``dsl.Else``, artifacts and the lightweight steps (``log-metrics``,
``report-not-deployed``). Kubernetes settings (volumes, GPUs, secrets) do not apply
locally: pass local folders as ``workspace`` and ``model_repository``.

    python -m pipelines.local --config configs/cpu_tao_synth.yaml --root /tmp/kfp-run \\
        --set train.epochs=1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kfp import components, local
from kfp.dsl import component_factory
from kfp.local import executor_output_utils, status, subprocess_task_handler
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines.qdtrack_pipeline import PIPELINE_YAML

_SUBPROCESS_HANDLER = subprocess_task_handler.SubprocessTaskHandler


def is_container_step(full_command: Sequence[str]) -> bool:
    """True for a container component's command (not a lightweight Python component)."""
    return not any(component_factory.EXECUTOR_MODULE in part for part in full_command)


class HostTaskHandler(subprocess_task_handler.SubprocessTaskHandler):
    """``SubprocessRunner``'s handler that also runs container steps as local processes.

    The container's command is run as resolved, with this interpreter's ``bin`` folder
    first on ``PATH`` (so ``qdtrack`` is this environment's). Lightweight Python steps
    keep the ``SubprocessRunner``'s behaviour.
    """

    def __init__(
        self,
        image: str,
        full_command: list[str],
        pipeline_root: str,
        runner: local.SubprocessRunner,
        env_vars: dict[str, str] | None = None,
    ) -> None:
        if not is_container_step(full_command):
            super().__init__(image, full_command, pipeline_root, runner, env_vars)
            return
        self.image = image
        self.full_command = full_command
        self.pipeline_root = pipeline_root
        self.runner = runner
        self.env_vars = env_vars or {}

    def run(self) -> status.Status:
        if not is_container_step(self.full_command):
            return super().run()
        bin_dir = str(Path(sys.executable).parent)
        env = {**self.env_vars, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
        code = subprocess_task_handler.run_local_subprocess(self.full_command, env_vars=env)
        return status.Status.SUCCESS if code == 0 else status.Status.FAILURE


def outputs_with_declared_artifacts(
    executor_input: pipeline_spec_pb2.ExecutorInput,
    component_spec: pipeline_spec_pb2.ComponentSpec,
) -> dict[str, Any]:
    """A finished task's outputs, its declared output artifacts included.

    On a cluster, KFP's launcher records every output artifact of a container step at the
    path it gave the step; ``kfp.local`` only reads the executor output file, which a
    container step does not write. Artifacts the file already lists are kept as they are.
    """
    executor_output = executor_output_utils.load_executor_output(
        executor_output_path=executor_input.outputs.output_file
    )
    for name, artifacts in executor_input.outputs.artifacts.items():
        if name not in executor_output.artifacts:
            executor_output.artifacts[name].CopyFrom(artifacts)
    return executor_output_utils.get_outputs_from_executor_output(
        executor_output=executor_output,
        executor_input=executor_input,
        component_spec=component_spec,
    )


def one_of_outputs(
    dag_outputs_spec: pipeline_spec_pb2.DagOutputsSpec, io_store: Any
) -> dict[str, Any]:
    """A DAG's output artifacts, where ``dsl.OneOf`` takes the branch that ran.

    ``kfp.local`` accepts one producer per DAG output only; a ``dsl.OneOf`` output lists
    one per branch, and exactly one of those tasks ran (the backend's rule).
    """
    outputs = {}
    for key, spec in dag_outputs_spec.artifacts.items():
        produced = []
        for selector in spec.artifact_selectors:
            try:
                value = io_store.get_task_output(
                    selector.producer_subtask, selector.output_artifact_key
                )
            except ValueError:  # that branch's task did not run
                continue
            produced.append(value)
        if len(produced) != 1:
            raise ValueError(f"DAG output {key!r}: {len(produced)} producers ran, expected 1")
        outputs[key] = produced[0]
    return outputs


@contextlib.contextmanager
def container_steps_as_processes() -> Iterator[None]:
    """Within the block, ``kfp.local``'s ``SubprocessRunner`` runs container steps too."""
    original_outputs = executor_output_utils.get_outputs_for_task
    original_dag_outputs = OrchestratorUtils.__dict__["get_dag_output_artifacts"]
    subprocess_task_handler.SubprocessTaskHandler = HostTaskHandler
    executor_output_utils.get_outputs_for_task = outputs_with_declared_artifacts
    OrchestratorUtils.get_dag_output_artifacts = staticmethod(one_of_outputs)
    try:
        yield
    finally:
        subprocess_task_handler.SubprocessTaskHandler = _SUBPROCESS_HANDLER
        executor_output_utils.get_outputs_for_task = original_outputs
        OrchestratorUtils.get_dag_output_artifacts = original_dag_outputs


def run_pipeline(
    arguments: Mapping[str, Any],
    *,
    pipeline_root: str | Path,
    package: str | Path = PIPELINE_YAML,
) -> None:
    """Run the compiled pipeline ``package`` with ``arguments`` on this machine.

    Raises:
        RuntimeError: a step failed (``kfp.local`` names it).
    """
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    pipeline = components.load_component_from_file(str(package))
    with container_steps_as_processes():
        pipeline(**arguments)


def local_arguments(config: str, overrides: Sequence[str], root: Path) -> dict[str, Any]:
    """The run parameters of a local run: CPU training, ONNX export, folders under ``root``."""
    return {
        "config": str(Path(config).resolve()),
        "overrides": list(overrides),
        "train_device": "cpu",
        "export_format": "onnx",
        "triton_service": "",
        "workspace": str(root / "workspace"),
        "model_repository": str(root / "model_repository"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.local", description=__doc__)
    parser.add_argument("--config", default="params.yaml", help="params file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--root", required=True, help="folder for the run's files")
    parser.add_argument("--package", default=str(PIPELINE_YAML), help="compiled pipeline YAML")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    arguments = local_arguments(args.config, args.set, root)
    run_pipeline(arguments, pipeline_root=root / "pipeline_root", package=args.package)
    sys.stdout.write(f"done: model repository {arguments['model_repository']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
