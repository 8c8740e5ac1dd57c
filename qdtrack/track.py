"""``qdtrack track``: detect, embed and track a video, an image folder or a MOT sequence.

Writes MOTChallenge results (for ``qdtrack evaluate``), optionally a rendered video and the
per-frame detections with embeddings in the ``qdtrack associate`` input format, so the
tracker can be re-tuned later without running the network again.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qdtrack.data.frames import open_frames
from qdtrack.data.mot import write_mot_results
from qdtrack.io_utils import parse_json_object, write_json
from qdtrack.model.qdtrack import QDTrack
from qdtrack.render import VideoWriter, draw_tracks
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import Tracker, build_tracker
from qdtrack.train import model_from_checkpoint


def detections_record(frame_id: int, det: Detections) -> dict[str, Any]:
    """One frame of the ``qdtrack associate`` input format."""
    emb = det.embeddings if det.embeddings is not None else np.zeros((len(det), 0), np.float32)
    return {
        "frame_id": frame_id,
        "bboxes": det.boxes_xyxy.round(3).tolist(),
        "scores": det.scores.round(5).tolist(),
        "labels": det.labels.tolist(),
        "embeds": emb.round(5).tolist(),
    }


def track_source(
    model: QDTrack,
    tracker: Tracker,
    source: str | Path,
    *,
    start: int = 1,
    stop: int | None = None,
    render: str | Path | None = None,
    keep_detections: bool = False,
    progress: bool = True,
) -> tuple[list[tuple[int, Tracks]], list[Detections], float]:
    """Track every frame of ``source`` (1-based frames ``start..stop``).

    Returns:
        ``(per-frame (MOT frame number, tracks), per-frame detections with embeddings when
        keep_detections (else empty), frames per second of network + tracker)``.
    """
    model.eval()
    tracker.reset()
    results: list[tuple[int, Tracks]] = []
    kept: list[Detections] = []
    with open_frames(source, start=start, stop=stop) as frames:
        writer = VideoWriter(render, frames.fps) if render else None
        bar = tqdm(
            total=len(frames),
            desc="track",
            unit="frame",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        began = time.perf_counter()
        try:
            for index, (frame_number, image) in enumerate(frames):
                det = model.predict([image])[0]
                tracks = tracker.update(det, index)
                results.append((frame_number, tracks))
                if keep_detections:
                    kept.append(det)
                if writer is not None:
                    writer.write(draw_tracks(image, tracks))
                bar.update()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        seconds = time.perf_counter() - began
    fps = len(results) / seconds if seconds > 0 else 0.0
    return results, kept, fps


def main(args: argparse.Namespace) -> int:
    """``qdtrack track``."""
    torch.set_flush_denormal(True)
    model, config = model_from_checkpoint(args.checkpoint)
    settings: dict[str, Any] = dataclasses.asdict(config.tracker)
    if args.tracker_config:
        settings.update(parse_json_object(args.tracker_config, "--tracker-config"))
    tracker = build_tracker("qdtrack", settings)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    results, detections, fps = track_source(
        model,
        tracker,
        args.input,
        start=args.start,
        stop=args.stop,
        render=args.render,
        keep_detections=bool(args.save_detections),
    )
    rows = write_mot_results(args.out, results)
    if args.save_detections:
        records = [detections_record(i, det) for i, det in enumerate(detections)]
        write_json(args.save_detections, {"frames": records}, indent=None)
    ids = {int(t) for _, tracks in results for t in tracks.track_ids}
    sys.stdout.write(
        f"track: {len(results)} frames at {fps:.2f} frames/s, {len(ids)} tracks, "
        f"{rows} boxes -> {args.out}\n"
    )
    return 0
