"""``qdtrack export``: repository layout, export.json, and the command's error paths."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from qdtrack.checkpoint import checkpoint_state
from qdtrack.cli import main as cli
from qdtrack.config import QDTrackConfig
from qdtrack.export.repository import ExportResult

from .conftest import detecting_model, save_checkpoint


def _export(checkpoint: Path, out: Path, *extra: str) -> int:
    return cli(["export", "--checkpoint", str(checkpoint), "--out", str(out), *extra])


def test_repository_layout_and_record(exported: ExportResult, tiny_checkpoint: Path) -> None:
    repo = exported.model_dir.parent
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    assert files == [
        "qdtrack",
        "qdtrack/1",
        "qdtrack/1/export.json",
        "qdtrack/1/model.onnx",
        "qdtrack/config.pbtxt",
    ]
    record = json.loads((repo / "qdtrack" / "1" / "export.json").read_text())
    sha256 = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert record["checkpoint_sha256"] == sha256
    assert record["model_version"] == f"qdtrack-{sha256[:12]}"
    assert record["img_scale"] == [160, 160]
    assert record["embedding_dim"] == 32 == record["model_config"]["embed_channels"]
    assert record["tracker_config"]["init_score_thr"] == 0.3
    assert record["platform"] == "onnxruntime_onnx" and record["model_file"] == "model.onnx"
    parity = record["parity"]
    assert parity["detections_pytorch"] == parity["detections_exported"] > 0
    assert parity["unmatched"] == 0 and parity["max_box_rel_diff"] <= 1e-3


def test_cli_export_version_folder_and_idempotent_rerun(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ("--set", "deploy.model_name=tracker", "--version", "3", "--instance-count", "2")
    assert _export(tiny_checkpoint, tmp_path, *extra) == 0
    assert "model_version qdtrack" not in capsys.readouterr().out  # named after model_name
    assert (tmp_path / "tracker" / "3" / "model.onnx").is_file()
    assert 'name: "tracker"' in (tmp_path / "tracker" / "config.pbtxt").read_text()
    assert "count: 2" in (tmp_path / "tracker" / "config.pbtxt").read_text()
    # Same checkpoint, same version: a re-export is allowed and changes nothing else.
    assert _export(tiny_checkpoint, tmp_path, *extra) == 0
    assert sorted(p.name for p in (tmp_path / "tracker").iterdir()) == ["3", "config.pbtxt"]


def test_another_model_in_the_version_folder_needs_force(
    tiny_checkpoint: Path,
    tiny_config: QDTrackConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    version_dir = repo / "qdtrack" / "1"
    version_dir.mkdir(parents=True)
    (version_dir / "model.onnx").write_bytes(b"someone else's model")
    assert _export(tiny_checkpoint, repo) == 2
    assert "was not written by qdtrack export" in capsys.readouterr().err
    shutil.rmtree(version_dir)
    assert _export(tiny_checkpoint, repo) == 0
    other = save_checkpoint(detecting_model(tiny_config, seed=1), tiny_config, tmp_path / "o.pt")
    before = (version_dir / "model.onnx").read_bytes()
    capsys.readouterr()
    assert _export(other, repo) == 2
    err = capsys.readouterr().err
    assert "holds another model" in err and "--force" in err and len(err.splitlines()) == 1
    assert (version_dir / "model.onnx").read_bytes() == before  # untouched
    assert _export(other, repo, "--force") == 0
    record = json.loads((version_dir / "export.json").read_text())
    assert record["checkpoint_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert [p.name for p in (repo / "qdtrack").iterdir() if p.name.startswith(".")] == []


def test_missing_and_foreign_checkpoints(
    tiny_config: QDTrackConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(tmp_path / "missing.pt", tmp_path / "repo") == 2
    assert "checkpoint not found" in capsys.readouterr().err
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    assert _export(text, tmp_path / "repo") == 2
    assert "expected a checkpoint written by qdtrack train" in capsys.readouterr().err
    bare = tmp_path / "bare.pt"
    torch.save({"weights": torch.zeros(3)}, bare)
    assert _export(bare, tmp_path / "repo") == 2
    assert "not a qdtrack checkpoint" in capsys.readouterr().err
    # A config that does not describe the weights (e.g. an edited embedding width).
    mismatched = tmp_path / "mismatched.pt"
    state = checkpoint_state(detecting_model(tiny_config), tiny_config)
    state["config"]["model"]["embed_channels"] = 64
    torch.save(state, mismatched)
    assert _export(mismatched, tmp_path / "repo") == 2
    assert "weights do not fit" in capsys.readouterr().err
    # A checkpoint of another format version is named as such.
    torch.save({**state, "format": "qdtrack-ops/0"}, mismatched)
    assert _export(mismatched, tmp_path / "repo") == 2
    assert "checkpoint format 'qdtrack-ops/0', expected 'qdtrack-ops/1'" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_option_errors(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _export(tiny_checkpoint, tmp_path, "--format", "torchscript")
    assert exc.value.code == 2
    assert "invalid choice: 'torchscript'" in capsys.readouterr().err
    assert _export(tiny_checkpoint, tmp_path, "--trt-fp16", "--instance-kind", "cpu") == 2
    assert "--instance-kind gpu" in capsys.readouterr().err
    assert _export(tiny_checkpoint, tmp_path, "--version", "0") == 2
    assert "positive integer" in capsys.readouterr().err
    file_out = tmp_path / "a_file"
    file_out.write_text("")
    assert _export(tiny_checkpoint, file_out) == 2
    assert "is not a folder" in capsys.readouterr().err


def _tensorrt_usable() -> bool:
    from qdtrack.export.tensorrt_engine import tensorrt_unavailable_reason

    return tensorrt_unavailable_reason() is None


@pytest.mark.skipif(_tensorrt_usable(), reason="TensorRT and CUDA are present here")
def test_tensorrt_without_tensorrt_is_a_clear_error(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(tiny_checkpoint, tmp_path / "repo", "--format", "tensorrt") == 2
    err = capsys.readouterr().err
    assert err.startswith("qdtrack export: error: --format tensorrt needs TensorRT and a CUDA GPU")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "repo").exists()
