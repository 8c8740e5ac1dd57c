"""``qdtrack associate``: re-track precomputed detections and embeddings.

Input: the per-frame detections file (``frames.json``, see
:mod:`qdtrack.inference.detections_file`); a frame with id 0 starts a fresh tracker.

Output (``tracks.json``)::

    {"frames": [{"frame_id": 0, "tracks": [{"input_index": i, "track_id": t,
                 "bbox": [x1, y1, x2, y2], "score": s, "label": l}, ...]}, ...]}

listing the detections that got an id >= 0, ``input_index`` being the detection's row in
the input frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack.config import stage_config
from qdtrack.data.mot import MotTable, read_mot_txt, read_seqinfo, write_mot_results
from qdtrack.inference.detections_file import Frame, parse_frames
from qdtrack.io_utils import read_json, write_json
from qdtrack.structures import Tracks
from qdtrack.trackers import Tracker, build_tracker

APPEARANCE_TRACKERS = ("qdtrack", "tao")


@dataclass(frozen=True)
class AssociationResult:
    """Per-frame tracks and the per-frame time spent in ``tracker.update`` (seconds)."""

    frames: list[tuple[int, Tracks]]
    seconds: np.ndarray

    @property
    def num_tracks(self) -> int:
        """Distinct track ids (counted per sequence, summed)."""
        total, seen = 0, set[int]()
        for frame_id, tracks in self.frames:
            if frame_id == 0:
                total += len(seen)
                seen = set()
            seen.update(tracks.track_ids.tolist())
        return total + len(seen)


def run_association(tracker: Tracker, frames: Iterable[Frame]) -> AssociationResult:
    """Run ``tracker`` over ``frames``, resetting it at every frame 0, timing each update."""
    out: list[tuple[int, Tracks]] = []
    seconds: list[float] = []
    first = True
    for frame in frames:
        if frame.frame_id == 0 or first:
            tracker.reset()
            first = False
        start = time.perf_counter()
        tracks = tracker.update(frame.detections, frame.frame_id)
        seconds.append(time.perf_counter() - start)
        out.append((frame.frame_id, tracks))
    return AssociationResult(out, np.asarray(seconds))


def tracks_to_json(result: AssociationResult) -> dict[str, Any]:
    """The ``tracks.json`` document."""
    frames = []
    for frame_id, tracks in result.frames:
        rows = [
            {
                "input_index": int(tracks.input_indices[k]),
                "track_id": int(tracks.track_ids[k]),
                "bbox": [round(float(v), 3) for v in tracks.boxes_xyxy[k]],
                "score": round(float(tracks.scores[k]), 5),
                "label": int(tracks.labels[k]),
            }
            for k in range(len(tracks))
        ]
        frames.append({"frame_id": frame_id, "tracks": rows})
    return {"frames": frames}


def frames_from_mot_det(table: MotTable, seq_length: int, *, min_score: float) -> dict[str, Any]:
    """A ``frames.json`` document (no embeddings) from MOTChallenge detections.

    MOT frame ``k`` (1-based) becomes ``frame_id`` ``k - 1``; every frame of the sequence
    is listed, empty ones included.
    """
    frames = []
    for mot_frame in range(1, seq_length + 1):
        rows = table.for_frame(mot_frame)
        rows = rows.select(rows.scores >= min_score)
        frames.append(
            {
                "frame_id": mot_frame - 1,
                "bboxes": rows.boxes_xyxy.round(3).tolist(),
                "scores": rows.scores.round(5).tolist(),
                "labels": [0] * len(rows),
            }
        )
    return {"frames": frames}


def _timing_line(result: AssociationResult) -> str:
    ms = result.seconds * 1e3
    med = float(np.median(ms)) if ms.size else 0.0
    p99 = float(np.percentile(ms, 99)) if ms.size else 0.0
    return (
        f"associate: {len(result.frames)} frames, {result.num_tracks} tracks; per-frame "
        f"association time median {med:.3f} ms, p99 {p99:.3f} ms (file I/O excluded)\n"
    )


def main(args: argparse.Namespace) -> int:
    """``qdtrack associate``."""
    settings = stage_config(args.config, args.set).tracker
    tracker = build_tracker(settings)
    frames = parse_frames(
        read_json(args.input), args.input, need_embeds=settings.tracker_type in APPEARANCE_TRACKERS
    )
    result = run_association(tracker, frames)
    write_json(args.output, tracks_to_json(result), indent=None)
    if args.mot_output:
        if sum(1 for fid, _ in result.frames if fid == 0) > 1:
            raise ValueError("--mot-output needs a single sequence (frame_id 0 occurs twice)")
        write_mot_results(args.mot_output, ((fid + 1, t) for fid, t in result.frames))
    sys.stdout.write(_timing_line(result))
    return 0


def main_det2frames(args: argparse.Namespace) -> int:
    """``qdtrack data det2frames``: MOTChallenge ``det.txt`` to ``frames.json``."""
    seq = Path(args.seq)
    info = read_seqinfo(seq)
    det_path = Path(args.det) if args.det else seq / "det" / "det.txt"
    table = read_mot_txt(det_path, kind="det", seq_length=info.seq_length)
    doc = frames_from_mot_det(table, info.seq_length, min_score=args.min_score)
    write_json(args.out, doc, indent=None)
    kept = sum(len(f["scores"]) for f in doc["frames"])
    sys.stdout.write(f"det2frames: {info.seq_length} frames, {kept} detections -> {args.out}\n")
    return 0
