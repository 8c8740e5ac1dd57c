"""A synthetic sequence tracked through the exported graph gets the PyTorch ids."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qdtrack.config import QDTrackConfig
from qdtrack.data.frames import open_frames
from qdtrack.export.runtime import OnnxDetector
from qdtrack.model.qdtrack import QDTrack
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import build_tracker


class _Detector(Protocol):
    def predict(self, frames_bgr: list[npt.NDArray[np.uint8]]) -> list[Detections]: ...


def _track(detector: _Detector, sequence: Path, config: QDTrackConfig) -> list[Tracks]:
    tracker = build_tracker(config.tracker)
    tracks = []
    with open_frames(sequence) as frames:
        for index, (_, image) in enumerate(frames):
            tracks.append(tracker.update(detector.predict([image])[0], index))
    return tracks


def test_exported_graph_tracks_with_the_same_ids(
    tiny_workspace: Path,
    tiny_config: QDTrackConfig,
    torch_model: QDTrack,
    onnx_detector: OnnxDetector,
) -> None:
    sequence = next(p for p in sorted((tiny_workspace / "data" / "val").iterdir()) if p.is_dir())
    eager = _track(torch_model, sequence, tiny_config)
    exported = _track(onnx_detector, sequence, tiny_config)
    assert len(eager) == len(exported) == 16
    for frame, (ours, theirs) in enumerate(zip(exported, eager, strict=True)):
        np.testing.assert_array_equal(ours.track_ids, theirs.track_ids, err_msg=f"frame {frame}")
        np.testing.assert_allclose(ours.boxes_xyxy, theirs.boxes_xyxy, rtol=1e-3, atol=1e-3)
    # The comparison means something: there are tracks, and some ids span several frames.
    frames_per_id = Counter(int(i) for t in eager for i in t.track_ids)
    assert sum(frames_per_id.values()) > 0
    assert max(frames_per_id.values()) >= 3
