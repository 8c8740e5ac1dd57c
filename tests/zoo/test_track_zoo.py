"""``qdtrack track VIDEO --weights NAME`` for each published name, end to end.

Each run downloads a generated checkpoint in the published layout from the local server,
converts it, builds the real network (R-50 caffe / R-101 pytorch style) and runs the real
tracker (MOT17 / TAO). Only the input size is smaller than published (128 instead of
1088 / 1333x800) to keep the R-101 runs short on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from qdtrack import zoo
from qdtrack.checkpoint import load_checkpoint
from qdtrack.cli import main as cli
from qdtrack.data.mot import read_mot_txt

from .conftest import LocalZoo
from .published import tao_class_names

FRAMES = 3


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 160x120 frames: a bright square moving right over a textured background."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    background = np.random.default_rng(0).integers(0, 120, (120, 160, 3), dtype=np.uint8)
    for index in range(FRAMES):
        frame = background.copy()
        cv2.rectangle(frame, (30 + 8 * index, 40), (70 + 8 * index, 90), (230, 230, 230), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_track_a_video_with_each_zoo_name(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    local_zoo: LocalZoo,
    small_inputs: None,
    video: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local_zoo.use(name)
    monkeypatch.chdir(tmp_path)
    # the README's first command: no --out, so the results go to ./<video name>.txt
    assert cli(["track", str(video), "--weights", name, "--render", "out.mp4"]) == 0
    out, rendered = tmp_path / "clip.txt", tmp_path / "out.mp4"
    captured = capsys.readouterr()
    assert f"track: {FRAMES} frames" in captured.out and "-> clip.txt" in captured.out
    assert "100%" in captured.err  # the download's progress bar
    assert local_zoo.requests_for(name) == 1

    # random weights detect boxes everywhere; their ids do not persist (random embeddings
    # barely differ, so no match clears the tracker's threshold), but every frame has tracks
    table = read_mot_txt(out, kind="results", seq_length=FRAMES)
    assert set(table.frames.tolist()) == set(range(1, FRAMES + 1))
    cap = cv2.VideoCapture(str(rendered))
    assert sum(1 for _ in iter(lambda: cap.read()[0], False)) == FRAMES

    converted = zoo.converted_path(Path(zoo.MODELS[name].file_name).stem)
    config = load_checkpoint(converted)["config"]
    if name.startswith("qdtrack-r101"):
        assert (config["model"]["depth"], config["model"]["style"]) == (101, "pytorch")
        assert config["tracker"]["type"] == "tao"
        assert tuple(config["model"]["classes"]) == tao_class_names()
        # the favoured class of the generated weights, named from the checkpoint's meta
        assert "track: classes tao_class_007" in captured.out
    else:
        assert (config["model"]["depth"], config["model"]["style"]) == (50, "caffe")
        assert config["tracker"]["type"] == "qdtrack"
        assert "track: classes" not in captured.out
