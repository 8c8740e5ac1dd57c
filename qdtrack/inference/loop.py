"""The tracking loop: the network and a tracker over the frames of a source."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from qdtrack.checkpoint import checkpoint_config, load_checkpoint, model_from_state
from qdtrack.config import QDTrackConfig, stage_config
from qdtrack.data.frames import FrameSource, open_frames
from qdtrack.model.qdtrack import QDTrack
from qdtrack.render import VideoWriter, draw_tracks
from qdtrack.structures import Detections, Tracks
from qdtrack.trackers import Tracker


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
