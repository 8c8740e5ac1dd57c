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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from qdtrack.config import QDTrackConfig, stage_config
from qdtrack.data.frames import FrameSource, open_frames
from qdtrack.data.mot import write_mot_results
from qdtrack.io_utils import read_json, write_json
from qdtrack.model.qdtrack import QDTrack
from qdtrack.render import VideoWriter, draw_tracks
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import AnyTrackerSettings, Tracker, build_tracker, iou_baseline_settings
from qdtrack.train import checkpoint_config, load_checkpoint, model_from_state


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


class Predictor(Protocol):
    """What tracking needs from a network: ``QDTrack`` or the exported graph's runner."""

    def predict(self, frames_bgr: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections with embeddings of raw uint8 BGR frames."""
        ...


def track_source(
    model: Predictor,
    tracker: Tracker,
    source: str | Path | FrameSource,
    *,
    start: int = 1,
    stop: int | None = None,
    render: str | Path | None = None,
    keep_detections: bool = False,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
) -> tuple[list[tuple[int, Tracks]], list[Detections], float]:
    """Track every frame of ``source`` (1-based frames ``start..stop``).

    ``source`` is a path for :func:`~qdtrack.data.frames.open_frames` or an opened
    :class:`~qdtrack.data.frames.FrameSource` (then ``start`` and ``stop`` are its own).
    ``class_names`` label the rendered boxes with their class (multi-class models).

    Returns:
        ``(per-frame (MOT frame number, tracks), per-frame detections with embeddings when
        keep_detections (else empty), frames per second of network + tracker)``.
    """
    if isinstance(model, torch.nn.Module):
        model.eval()
    tracker.reset()
    results: list[tuple[int, Tracks]] = []
    kept: list[Detections] = []
    opened = (
        source if isinstance(source, FrameSource) else open_frames(source, start=start, stop=stop)
    )
    with opened as frames:
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
                    writer.write(draw_tracks(image, tracks, class_names))
                bar.update()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        seconds = time.perf_counter() - began
    fps = len(results) / seconds if seconds > 0 else 0.0
    return results, kept, fps


def load_for_tracking(args: argparse.Namespace) -> tuple[QDTrack, QDTrackConfig]:
    """The checkpoint's model on ``--device`` and the stage's configuration.

    The tracker (and every block but ``model``) comes from ``--config`` when given, else
    from the checkpoint; ``--set`` applies on top.
    """
    torch.set_flush_denormal(True)
    state = load_checkpoint(args.checkpoint)
    config = stage_config(
        args.config, args.set, checkpoint=checkpoint_config(state, args.checkpoint)
    )
    model = model_from_state(state, config.model)
    model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model, config


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
        records = [detections_record(i, det) for i, det in enumerate(detections)]
        write_json(args.save_detections, {"frames": records}, indent=None)
    ids = {int(t) for _, tracks in results for t in tracks.track_ids}
    sys.stdout.write(
        f"track: {len(results)} frames at {fps:.2f} frames/s, {len(ids)} tracks, "
        f"{rows} boxes -> {out}\n"
    )
    if multi_class and ids:
        sys.stdout.write(f"track: classes {track_class_summary(results, class_names)}\n")
    return 0


def default_results_path(source: str | Path) -> Path:
    """``<input name>.txt`` in the working directory (``clip.mp4`` -> ``clip.txt``)."""
    path = Path(source)
    return Path(f"{path.stem if path.is_file() else path.resolve().name}.txt")


def track_class_summary(
    results: Sequence[tuple[int, Tracks]], class_names: Sequence[str], top: int = 5
) -> str:
    """``"person 12, car 3"``: how many tracks of each class, most frequent first.

    A track counts for the class of its first box.
    """
    first_label: dict[int, int] = {}
    for _, tracks in results:
        for track_id, label in zip(tracks.track_ids, tracks.labels, strict=True):
            first_label.setdefault(int(track_id), int(label))
    counts = Counter(first_label.values())
    shown = [
        f"{class_names[label] if 0 <= label < len(class_names) else label} {count}"
        for label, count in counts.most_common(top)
    ]
    more = len(counts) - len(shown)
    return ", ".join(shown) + (f" (+{more} more classes)" if more > 0 else "")


def track_val_set(
    model: Predictor,
    settings: AnyTrackerSettings,
    manifest: dict[str, Any],
    out_dir: str | Path,
    *,
    render: bool = True,
    iou_baseline: bool = True,
    class_names: Sequence[str] = ("pedestrian",),
) -> dict[str, Any]:
    """Track every sequence of a ``val.json`` (``qdtrack data convert``) into ``out_dir``.

    Writes ``results/<seq>.txt``, ``detections/<seq>.json`` (associate input),
    ``<seq>.mp4`` when ``render``, and with ``iou_baseline`` the appearance-free IoU
    tracker's ``iou_results/<seq>.txt`` on the same detections and frame numbers.
    A TAO manifest (``"format": "tao"``) goes to
    :func:`qdtrack.track_tao.track_tao_set` instead (JSON results; ``class_names`` name
    the model's labels). ``settings`` picks the tracker and configures it. Returns
    per-sequence frame counts and speeds.
    """
    if manifest.get("format") == "tao":
        from qdtrack.track_tao import track_tao_set

        return track_tao_set(
            model,
            settings,
            manifest,
            out_dir,
            class_names=class_names,
            render=render,
            iou_baseline=iou_baseline,
        )
    out = Path(out_dir)
    sequences = manifest.get("sequences")
    if not isinstance(sequences, list) or not sequences:
        raise ValueError("val manifest lists no sequences (run `qdtrack data convert`)")
    report: dict[str, Any] = {}
    for entry in sequences:
        seq_name = str(entry["name"])
        results, detections, fps = track_source(
            model,
            build_tracker(settings),
            entry["path"],
            start=int(entry["start"]),
            stop=int(entry["stop"]),
            render=out / f"{seq_name}.mp4" if render else None,
            keep_detections=True,
        )
        write_mot_results(out / "results" / f"{seq_name}.txt", results)
        records = [detections_record(i, det) for i, det in enumerate(detections)]
        write_json(out / "detections" / f"{seq_name}.json", {"frames": records}, indent=None)
        if iou_baseline:
            iou = build_tracker(iou_baseline_settings(settings))
            iou_results = [
                (frame_number, iou.update(dataclasses.replace(det, embeddings=None), index))
                for index, ((frame_number, _), det) in enumerate(
                    zip(results, detections, strict=True)
                )
            ]
            write_mot_results(out / "iou_results" / f"{seq_name}.txt", iou_results)
        report[seq_name] = {"frames": len(results), "fps": round(fps, 3)}
    return report


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
