"""INT8 export: quantised graph, calibration on training frames, HOTA/IDF1 gate vs float32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from qdtrack.cli import main as cli
from qdtrack.config import QDTrackConfig
from qdtrack.export.int8_gate import Int8GateReport, TrackingScores
from qdtrack.export.quantize import CalibrationError, calibration_images, read_bgr, spread
from qdtrack.export.runtime import OnnxDetector
from qdtrack.structures import box_iou


@pytest.fixture(scope="module")
def converted(tiny_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``qdtrack data convert`` of the tiny workspace: ``val.json`` and ``val_gt``."""
    out = tmp_path_factory.mktemp("converted")
    params = str(tiny_workspace / "params.yaml")
    data = str(tiny_workspace / "data")
    assert cli(["data", "convert", "--config", params, "--data", data, "--out", str(out)]) == 0
    return out


def _export(checkpoint: Path, converted: Path, out: Path, workspace: Path, *sets: str) -> int:
    args = ["export", "--checkpoint", str(checkpoint), "--out", str(out)]
    args += ["--config", str(workspace / "params.yaml"), "--set", "export.int8=true"]
    args += ["--val-manifest", str(converted / "val.json"), "--val-gt", str(converted / "val_gt")]
    for value in sets:
        args += ["--set", value]
    return cli(args)


@pytest.fixture(scope="module")
def int8_repository(
    tiny_checkpoint: Path,
    converted: Path,
    tiny_workspace: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The tiny model exported in INT8 with the default gate (0.5 points)."""
    out = tmp_path_factory.mktemp("int8_repository")
    assert _export(tiny_checkpoint, converted, out, tiny_workspace) == 0
    return out


def test_int8_export_passes_the_default_gate(int8_repository: Path) -> None:
    version = int8_repository / "qdtrack" / "1"
    record = json.loads((version / "export.json").read_text())
    gate = record["int8"]
    assert record["precision"] == "int8" and gate["passed"]
    assert (gate["max_hota_drop"], gate["max_idf1_drop"]) == (0.5, 0.5)  # the defaults
    for metric in ("hota", "idf1"):
        assert gate["float32"][metric] - gate["int8"][metric] <= 0.5
    # The kept file is the quantised graph: integer convolutions, float32 outside them.
    ops = {node.op_type for node in onnx.load(str(version / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "RoiAlign"} <= ops


def test_int8_graph_detects_like_the_float_graph(
    int8_repository: Path, onnx_detector: OnnxDetector, tiny_workspace: Path
) -> None:
    int8 = OnnxDetector.from_repository(int8_repository)
    frame_path = sorted((tiny_workspace / "data" / "val").glob("*/img1/*.jpg"))[5]
    frame = read_bgr(frame_path)
    (ours,) = int8.predict([frame])
    (theirs,) = onnx_detector.predict([frame])
    assert len(theirs) > 0 and len(ours) > 0
    # Quantised, not identical; but the strongest detection is found by both.
    best = theirs.boxes_xyxy[np.argmax(theirs.scores)]
    assert float(box_iou(best[None], ours.boxes_xyxy).max()) > 0.7


def test_a_too_strict_threshold_fails_the_export_naming_both_figures(
    int8_repository: Path,
    tiny_checkpoint: Path,
    converted: Path,
    tiny_workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate = json.loads((int8_repository / "qdtrack" / "1" / "export.json").read_text())["int8"]
    # Below the drop this model really shows, whatever its sign: the gate must refuse.
    drop = gate["float32"]["hota"] - gate["int8"]["hota"]
    strict = f"export.max_hota_drop={drop - 0.01}"
    out = tmp_path / "repo"
    assert _export(tiny_checkpoint, converted, out, tiny_workspace, strict) == 2
    err = capsys.readouterr().err
    assert "fails its quality gate" in err and "Traceback" not in err
    assert f"HOTA {gate['int8']['hota']:.2f} (INT8) vs {gate['float32']['hota']:.2f}" in err
    assert not (out / "qdtrack" / "1").exists()  # nothing installed


def test_gate_report_names_each_failing_metric() -> None:
    report = Int8GateReport(
        float32=TrackingScores(hota=50.0, idf1=60.0),
        int8=TrackingScores(hota=49.6, idf1=58.0),
        max_hota_drop=0.5,
        max_idf1_drop=1.0,
    )
    assert report.failures() == ["IDF1 58.00 (INT8) vs 60.00 (float32): drop 2.00 > allowed 1"]
    assert not report.to_dict()["passed"]
    relaxed = Int8GateReport(report.float32, report.int8, max_hota_drop=0.5, max_idf1_drop=2.5)
    assert relaxed.failures() == [] and relaxed.to_dict()["passed"]


def test_calibration_frames_are_spread_over_the_training_sources(
    tiny_config: QDTrackConfig,
) -> None:
    frames = calibration_images(tiny_config.train.sources, ("pedestrian",), 6)
    assert len(frames) == 6 and all(p.is_file() for p in frames)
    assert {p.parent.parent.name for p in frames if p.parent.name == "img1"}  # MOT frames
    assert any("crowdhuman" in str(p) for p in frames)  # and CrowdHuman stills
    assert spread([Path(str(i)) for i in range(10)], 3) == [Path("0"), Path("4"), Path("9")]
    with pytest.raises(CalibrationError, match=r"train\.sources is empty"):
        calibration_images((), ("pedestrian",), 4)
