"""The sidecar has no model settings: the served model's contract decides (overrides aside)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from qdtrack.export.serving_contract import ServingContract
from qdtrack.trackers import TAOTrackerSettings
from serving.launch import sidecar_env_for
from serving.sidecar.__main__ import build_parser, settings_from_args
from serving.sidecar.errors import ContractMissing
from serving.sidecar.settings import Settings
from serving.sidecar.triton_client import TritonDetector

CONTRACT = ServingContract(
    model_version="qdtrack-0123",
    img_scale=(384, 224),
    class_names=("person", "car", "dog"),
    tracker={"type": "tao", "memo_tracklet_frames": 7},
    embedding_dim=32,
    max_detections=100,
)


def test_retired_model_settings_are_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_IMG_SCALE", "[384, 384]")
    with pytest.raises(SystemExit, match="SIDECAR_IMG_SCALE: no longer read"):
        settings_from_args(build_parser().parse_args([]))


def test_contract_overrides_are_checked() -> None:
    argv = ["--contract-overrides", '{"tracker": {"init_score_thr": 0.8}}']
    settings = settings_from_args(build_parser().parse_args(argv))
    assert settings.contract_overrides == {"tracker": {"init_score_thr": 0.8}}
    with pytest.raises(ValidationError, match="embedding_dim"):
        Settings(contract_overrides={"embedding_dim": 64})  # describes the network


def test_an_override_is_applied_and_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    detector = TritonDetector(
        "127.0.0.1:1", contract_overrides={"tracker": {"match_score_thr": 0.7}}
    )
    with caplog.at_level(logging.WARNING):
        changed = detector._with_overrides(3, CONTRACT)
        detector._with_overrides(3, CONTRACT)
    settings = changed.tracker_settings()
    assert isinstance(settings, TAOTrackerSettings)
    assert (settings.match_score_thr, settings.memo_tracklet_frames) == (0.7, 7)
    warnings = [r for r in caplog.records if "OVERRIDE" in r.getMessage()]
    assert len(warnings) == 1 and "version 3" in warnings[0].getMessage()  # once per version
    bad = TritonDetector("127.0.0.1:1", contract_overrides={"tracker": {"no_such": 1}})
    with pytest.raises(ContractMissing, match="no_such"):
        bad._with_overrides(3, CONTRACT)


def test_serve_environment_carries_no_model_settings(tmp_path: Path) -> None:
    assert sidecar_env_for(tmp_path) == {}
    (tmp_path / "qdtrack").mkdir()
    (tmp_path / "qdtrack" / "champion.json").write_text(json.dumps({"version": 1}))
    assert set(sidecar_env_for(tmp_path)) == {"SIDECAR_MODEL_QUALITY_FILE"}


def test_a_version_without_a_contract_is_refused_after_one_reread() -> None:
    import asyncio
    import time

    from serving.sidecar.triton_client import _ModelInfo

    detector = TritonDetector("127.0.0.1:1")
    info = _ModelInfo(
        batched=False,
        contracts={1: CONTRACT},
        quality={},
        triton_version="2",
        read_at=time.monotonic(),
    )
    reads = []

    async def reread(triton_version: str | None) -> _ModelInfo:
        reads.append(triton_version)
        detector._info = info
        return info

    detector._info = info
    detector._read_model_info = reread  # type: ignore[method-assign]
    with pytest.raises(ContractMissing, match="no serving contract for version 2"):
        asyncio.run(detector._contract(None))  # expects the version last seen: 2
    assert reads == ["2"]  # the config was read once more before giving up
    assert asyncio.run(detector._contract(1))[1] == CONTRACT
