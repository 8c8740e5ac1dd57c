"""``qdtrack track`` (one video, image folder or sequence) and ``qdtrack track-val``.

``track`` writes MOTChallenge results (for ``qdtrack evaluate``), optionally a rendered video
and the per-frame detections with embeddings (``frames.json``, the ``qdtrack associate``
input), so the tracker can be re-tuned later without running the network again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qdtrack.data.mot import write_mot_results
from qdtrack.inference.detections_file import write_detections_file
from qdtrack.inference.loop import (
    default_results_path,
    load_for_tracking,
    track_class_summary,
    track_source,
)
from qdtrack.inference.validation import track_val_set
from qdtrack.io_utils import read_json, write_json
from qdtrack.trackers import build_tracker


def main(args: argparse.Namespace) -> int:
    """``qdtrack track``."""
    model, config = load_for_tracking(args)
    tracker = build_tracker(config.tracker)
    class_names = config.model.class_names()
    multi_class = len(class_names) > 1
    results, detections, fps = track_source(
        model,
        tracker,
        args.input,
        start=args.start,
        stop=args.stop,
        render=args.render,
        keep_detections=bool(args.save_detections),
        class_names=class_names if multi_class else None,
    )
    out = Path(args.out) if args.out else default_results_path(args.input)
    rows = write_mot_results(out, results)
    if args.save_detections:
        write_detections_file(args.save_detections, detections)
    ids = {int(t) for _, tracks in results for t in tracks.track_ids}
    sys.stdout.write(
        f"track: {len(results)} frames at {fps:.2f} frames/s, {len(ids)} tracks, "
        f"{rows} boxes -> {out}\n"
    )
    if multi_class and ids:
        sys.stdout.write(f"track: classes {track_class_summary(results, class_names)}\n")
    return 0


def main_val(args: argparse.Namespace) -> int:
    """``qdtrack track-val``."""
    model, config = load_for_tracking(args)
    report = track_val_set(
        model,
        config.tracker,
        read_json(args.manifest),
        args.out_dir,
        render=not args.no_render,
        iou_baseline=not args.no_iou_baseline,
        class_names=config.model.class_names(),
    )
    write_json(Path(args.out_dir) / "speed.json", report)
    for name, row in report.items():
        sys.stdout.write(f"track-val: {name}: {row['frames']} frames at {row['fps']} frames/s\n")
    return 0
