"""Data on the workspace volume: folders named by their inputs, built once, reused.

The pipeline's data steps run ``qdtrack data prepare|convert --store DIR --path-output
FILE`` (``components/data.py``); a second run with the same inputs must find the same
folder (so KFP caches ``train`` on the same path) and any changed input must get another.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qdtrack.cli import main as cli_main
from qdtrack.data.store import stored

TINY = ["data.frames=6", "data.train_seqs=1", "data.val_seqs=1", "data.crowdhuman_images=2"]


def _prepare(tmp_path: Path, *sets: str) -> tuple[Path, str]:
    out = tmp_path / "dataset_path"
    argv = ["data", "prepare", "--config", "params.yaml", "--store", str(tmp_path / "data"),
            "--path-output", str(out)]  # fmt: skip
    for item in (*TINY, *sets):
        argv += ["--set", item]
    assert cli_main(argv) == 0
    return Path(out.read_text()), out.read_text()


def test_prepare_and_convert_into_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # params.yaml, as in the image's working folder
    first, _ = _prepare(tmp_path)
    assert first.parent == tmp_path / "data" and first.name.startswith("dataset-")
    assert (first / "manifest.json").is_file() and (first / "train").is_dir()
    assert "wrote" in capsys.readouterr().out
    again, _ = _prepare(tmp_path)
    assert again == first and "reused" in capsys.readouterr().out
    other, _ = _prepare(tmp_path, "data.seed=1")
    assert other != first and other.parent == first.parent
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no scratch

    converted = tmp_path / "converted_path"
    argv = ["--link", f"data/dataset={first}", "data", "convert", "--config",
            str(repo / "params.yaml"), "--data", "data/dataset",
            "--store", str(tmp_path / "data"), "--path-output", str(converted)]  # fmt: skip
    for item in TINY:
        argv += ["--set", item]
    assert cli_main(argv) == 0
    folder = Path(converted.read_text())
    assert folder.name.startswith("converted-") and (folder / "val_gt").is_dir()
    listed = json.loads((folder / "val.json").read_text())
    assert "data/dataset/" in json.dumps(listed)  # the DVC layout, wherever the data lies
    assert cli_main(argv) == 0 and Path(converted.read_text()) == folder


def test_stored_builds_once_and_tolerates_a_concurrent_builder(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(out: Path) -> None:
        builds.append(out)
        out.mkdir()
        (out / "x").write_text("1")

    folder, reused = stored(tmp_path, "k1", build)
    assert not reused and (folder / "x").read_text() == "1"
    assert stored(tmp_path, "k1", build) == (folder, True) and len(builds) == 1

    def racing(out: Path) -> None:  # another run finishes the same folder first
        build(out)
        (tmp_path / "k2").mkdir()
        (tmp_path / "k2" / "x").write_text("theirs")

    folder, reused = stored(tmp_path, "k2", racing)
    assert reused and (folder / "x").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1", "k2"]


def test_prepare_needs_out_or_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["data", "prepare", "--config", "params.yaml"])
    assert "--out" in capsys.readouterr().err
