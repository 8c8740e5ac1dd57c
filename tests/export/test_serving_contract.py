"""The serving contract: written by export and deploy, one entry per version, read back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qdtrack.deploy import publish_version
from qdtrack.export.contract import MODEL_VERSION_PARAMETER
from qdtrack.export.repository import ExportError, ExportResult, export_repository
from qdtrack.export.serving_contract import (
    CONTRACT_PARAMETER,
    ServingContract,
    contracts_from_parameters,
)
from qdtrack.export.triton_config import parse_config, write_contract_parameters
from qdtrack.gate import decide
from qdtrack.schema import SchemaError
from qdtrack.trackers import TAOTrackerSettings


def _parameters(config_path: Path) -> dict[str, str]:
    config = parse_config(config_path.read_text())
    return {key: value.string_value for key, value in config.parameters.items()}


def test_export_writes_the_contract_into_config_and_record(exported: ExportResult) -> None:
    params = _parameters(exported.config_path)
    record = json.loads((exported.version_dir / "export.json").read_text())
    contract = ServingContract.from_mapping(record["serving_contract"])
    assert contracts_from_parameters(params) == {1: contract}
    assert ServingContract.from_json(params[CONTRACT_PARAMETER]) == contract
    assert contract.model_version == exported.metadata["model_version"]
    assert list(contract.img_scale) == exported.metadata["img_scale"]
    assert contract.tracker["type"] == exported.metadata["tracker"]
    assert contract.class_names == tuple(exported.metadata["class_names"])
    assert contract.embedding_dim == exported.metadata["embedding_dim"]


def test_each_version_keeps_its_own_contract(tiny_checkpoint: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    export_repository(tiny_checkpoint, repo, version=1)
    second = export_repository(
        tiny_checkpoint,
        repo,
        version=2,
        overrides=["tracker.type=tao", "model.img_scale=[96,64]"],
        force=True,  # the same checkpoint exported with other settings
    )
    contracts = contracts_from_parameters(_parameters(second.config_path))
    assert sorted(contracts) == [1, 2]
    assert isinstance(contracts[2].tracker_settings(), TAOTrackerSettings)
    assert contracts[2].img_scale == (96, 64)
    assert contracts[1].tracker["type"] == "qdtrack" and contracts[1].img_scale != (96, 64)
    newest = _parameters(second.config_path)[CONTRACT_PARAMETER]
    assert ServingContract.from_json(newest) == contracts[2]

    shutil.rmtree(second.version_dir)  # a version removed: its entry goes with it
    header = second.config_path.read_text().splitlines()[0]
    assert sorted(write_contract_parameters(second.model_dir)) == [1]
    params = _parameters(second.config_path)
    assert sorted(contracts_from_parameters(params)) == [1]
    assert params[MODEL_VERSION_PARAMETER] == contracts[1].model_version
    assert second.config_path.read_text().splitlines()[0] == header  # comments kept


def test_contract_errors_name_the_key(exported: ExportResult) -> None:
    contract = ServingContract.from_json(_parameters(exported.config_path)[CONTRACT_PARAMETER])
    with pytest.raises(SchemaError, match="not JSON"):
        ServingContract.from_json("{", "parameter x")
    with pytest.raises(ValueError, match="tracker"):
        contract.with_overrides({"tracker": {"no_such_setting": 1}})
    with pytest.raises(ValueError, match="img_scale"):
        contract.with_overrides({"img_scale": [0, 10]})
    with pytest.raises(ValueError, match="qdtrack_serving_contract_v3"):
        contracts_from_parameters({"qdtrack_serving_contract_v3": '{"model_version": 1}'})
    tao = contract.with_overrides({"tracker": {"type": "tao"}})
    assert isinstance(tao.tracker_settings(), TAOTrackerSettings)
    assert tao.img_scale == contract.img_scale


def test_deploy_rekeys_the_contract_to_the_published_version(
    exported: ExportResult, tmp_path: Path
) -> None:
    passed = decide({"HOTA": 50.0}, champion=None, gate=None, max_drop=None)
    export_repo = exported.model_dir.parent
    for _ in range(2):
        published = publish_version(export_repo, tmp_path, metrics={"HOTA": 50.0}, decision=passed)
    assert published.version == 2
    params = _parameters(tmp_path / "qdtrack" / "config.pbtxt")
    contracts = contracts_from_parameters(params)
    assert sorted(contracts) == [1, 2]  # the export's own "v1" became the published number
    assert contracts[2].model_version == exported.metadata["model_version"]
    assert json.loads(params["qdtrack_model_quality_v2"]) == {"HOTA": 50.0}  # the gauge's


def test_versions_that_cannot_share_one_config_are_refused(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    export_repository(tiny_checkpoint, tmp_path, version=1)
    with pytest.raises(ExportError, match=r"max_detections 100.*max_detections 300"):
        export_repository(tiny_checkpoint, tmp_path, version=2, overrides=["model.max_per_img=300"])
