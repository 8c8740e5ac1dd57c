"""Which Kubeflow Pipelines backend the compiled pipeline needs, feature by feature.

The KFP SDK (2.17.3 here) compiles features that older backends do not implement. Since
backend 2.5.0 an unknown field of the Kubernetes platform spec is *ignored* rather than
rejected (kubeflow/pipelines#11662), so running on a too-old backend can silently drop,
say, the deploy step's pod label (and the NetworkPolicy then blocks the deploy). The
pipeline therefore states its minimum backend, :data:`MINIMUM_BACKEND`, and
``tests/pipelines/test_kfp_backend.py`` checks that every feature the compiled YAML uses
is listed in :data:`FEATURES` with a version no newer than that.

``since`` is the backend release whose changelog lists the feature (the upstream pull
request is named); for long-standing features it is the earliest release known to have
them, which is all the check needs. A feature that appears in the YAML but not in the
table fails the test: classify it first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Version = tuple[int, int, int]

MINIMUM_BACKEND: Version = (2, 14, 0)
"""The oldest Kubeflow Pipelines backend that runs ``pipelines/qdtrack_pipeline.yaml``."""


@dataclass(frozen=True)
class Feature:
    since: Version
    what: str


FEATURES: dict[str, Feature] = {
    # pipeline spec
    "condition": Feature((2, 0, 0), "dsl.If / dsl.Else (triggerPolicy.condition)"),
    "one-of": Feature((2, 5, 0), "dsl.OneOf: a DAG output selected among branches"),
    "retry": Feature((2, 5, 0), "task retries (retryPolicy) of a top-level task"),
    "retry-in-dag": Feature(
        (2, 14, 0), "task retries inside a condition's DAG (#11908, retryStrategy for nested DAGs)"
    ),
    "optional-input": Feature((2, 5, 0), "optional pipeline inputs (#11788)"),
    "optional-input-in-dag": Feature(
        (2, 14, 0), "optional inputs of components inside DAGs (#11980)"
    ),
    "task-placeholder": Feature(
        (2, 5, 0), "{{$.pipeline_task_uuid}} / {{$.pipeline_job_uuid}} placeholders (#11599)"
    ),
    "resources": Feature((2, 0, 0), "cpu / memory / accelerator requests and limits"),
    "lightweight-component": Feature((2, 0, 0), "Python function components"),
    "output-parameter": Feature((2, 0, 0), "output parameters of container components"),
    # Kubernetes platform spec (kfp-kubernetes)
    "pvcMount": Feature((2, 5, 0), "mount_pvc with a PVC name from a parameter (#11770)"),
    "secretAsEnv": Feature(
        (2, 5, 0), "use_secret_as_env with the Secret name from a parameter, optional (#11621)"
    ),
    "podMetadata": Feature((2, 5, 0), "add_pod_label: one label or annotation per task"),
    "podMetadata-many": Feature(
        (2, 14, 0), "more than one label / annotation on one task (#12049)"
    ),
    "tolerations": Feature((2, 5, 0), "add_toleration"),
    "emptyDirMounts": Feature((2, 5, 0), "empty_dir_mount (e.g. /dev/shm)"),
    "activeDeadlineSeconds": Feature((2, 5, 0), "set_timeout"),
    "workspace": Feature((2, 14, 0), "dsl.PipelineConfig workspace PVC (#11982)"),
}


def version_text(version: Version) -> str:
    return ".".join(str(part) for part in version)


def _tasks(dag: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (dag.get("dag") or {}).get("tasks", {}).values()


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


_PLACEHOLDERS = ("{{$.pipeline_task_uuid}}", "{{$.pipeline_job_uuid}}")


def _dag_features(name: str, dag: Mapping[str, Any]) -> set[str]:
    """Features of one DAG (the root or a condition branch) and its tasks."""
    nested = name != "root"
    used: set[str] = set()
    for task in _tasks(dag):
        if "triggerPolicy" in task:
            used.add("condition")
        if "retryPolicy" in task:
            used.add("retry-in-dag" if nested else "retry")
    for output in ((dag.get("dag") or {}).get("outputs") or {}).get("artifacts", {}).values():
        if len(output.get("artifactSelectors", [])) > 1:
            used.add("one-of")
    parameters = (dag.get("inputDefinitions") or {}).get("parameters", {})
    if any(p.get("isOptional") for p in parameters.values()):
        used.add("optional-input-in-dag" if nested else "optional-input")
    return used


def _spec_features(spec: Mapping[str, Any]) -> set[str]:
    dags = {"root": spec["root"], **{k: v for k, v in spec["components"].items() if "dag" in v}}
    used = set().union(*(_dag_features(name, dag) for name, dag in dags.items()))
    if any(p in text for text in _strings(spec) for p in _PLACEHOLDERS):
        used.add("task-placeholder")
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container", {})
        if container.get("resources"):
            used.add("resources")
        if any("kfp.dsl.executor_main" in part for part in container.get("command", [])):
            used.add("lightweight-component")
    for component in spec["components"].values():
        if (component.get("outputDefinitions") or {}).get("parameters") and "dag" not in component:
            used.add("output-parameter")
    return used


def _platform_features(platform: Mapping[str, Any]) -> set[str]:
    kubernetes = platform.get("platforms", {}).get("kubernetes", {})
    used: set[str] = set()
    if (kubernetes.get("pipelineConfig") or {}).get("workspace"):
        used.add("workspace")
    for executor in kubernetes.get("deploymentSpec", {}).get("executors", {}).values():
        for key, value in executor.items():
            if key == "podMetadata":
                count = len(value.get("labels", {})) + len(value.get("annotations", {}))
                used.add("podMetadata-many" if count > 1 else "podMetadata")
            else:
                used.add(key)
    return used


def features_used(documents: list[Mapping[str, Any]]) -> set[str]:
    """The features of a compiled pipeline (its YAML documents: spec, platform spec)."""
    used = _spec_features(documents[0])
    for platform in documents[1:]:
        used |= _platform_features(platform)
    return used


def problems(documents: list[Mapping[str, Any]], minimum: Version = MINIMUM_BACKEND) -> list[str]:
    """Why the compiled pipeline would not run on a ``minimum`` backend (``[]``: it does)."""
    found = []
    for name in sorted(features_used(documents)):
        feature = FEATURES.get(name)
        if feature is None:
            found.append(f"{name}: not classified in pipelines/kfp_features.py FEATURES")
        elif feature.since > minimum:
            found.append(
                f"{name} ({feature.what}) needs backend {version_text(feature.since)}, "
                f"newer than {version_text(minimum)}"
            )
    return found
