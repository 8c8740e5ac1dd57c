"""The compiled pipeline uses no Kubeflow Pipelines feature newer than its stated minimum."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import kfp_features
from pipelines import qdtrack_pipeline as cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = cluster.compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def test_the_compiled_pipeline_runs_on_the_minimum_backend(documents: list) -> None:
    assert kfp_features.problems(documents) == []
    used = kfp_features.features_used(documents)
    # the features this pipeline is built on are seen (the detectors work)
    assert {"condition", "one-of", "pvcMount", "secretAsEnv", "podMetadata"} <= used
    newest = max(kfp_features.FEATURES[name].since for name in used)
    assert newest == kfp_features.MINIMUM_BACKEND, "the stated minimum is not the real one"


def test_the_minimum_is_what_the_docs_say() -> None:
    version = kfp_features.version_text(kfp_features.MINIMUM_BACKEND)
    for doc in ("README.md", "docs/kubernetes.md"):
        assert f"Kubeflow Pipelines {version}" in (REPO / doc).read_text(), doc


def test_a_newer_feature_or_an_unknown_one_is_reported(documents: list) -> None:
    changed = copy.deepcopy(documents)
    executors = changed[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors["exec-deploy"]["podMetadata"]["labels"]["second"] = "label"
    executors["exec-gate"]["nodeAffinity"] = [{"matchExpressions": []}]
    found = kfp_features.problems(changed, minimum=(2, 5, 0))
    assert any(p.startswith("podMetadata-many") and "2.14.0" in p for p in found), found
    assert any(p.startswith("nodeAffinity: not classified") for p in found), found
