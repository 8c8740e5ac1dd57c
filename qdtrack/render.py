"""Drawing tracks on frames and writing them to a video: each id keeps one colour."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from qdtrack.structures import Tracks

_GOLDEN = 0.618033988749895


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour for an id (golden-ratio hue walk)."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_tracks(
    frame_bgr: npt.NDArray[np.uint8],
    tracks: Tracks,
    class_names: Sequence[str] | None = None,
) -> npt.NDArray[np.uint8]:
    """A copy of ``frame_bgr`` with each track's box and id drawn in its colour.

    With ``class_names`` (a multi-class model's label names) the label reads
    ``"<id> <class name>"``.
    """
    out = frame_bgr.copy()
    scale = max(0.35, min(out.shape[:2]) / 900)
    for box, track_id, label_index in zip(
        tracks.boxes_xyxy, tracks.track_ids, tracks.labels, strict=True
    ):
        colour = track_colour(int(track_id))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, max(1, int(2 * scale)))
        label = str(int(track_id))
        if class_names is not None and 0 <= int(label_index) < len(class_names):
            label = f"{label} {class_names[int(label_index)]}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (x1, y1 - th - 4), (x1 + tw + 2, y1), colour, -1)
        cv2.putText(
            out,
            label,
            (x1 + 1, y1 - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return out


class VideoWriter:
    """An mp4 (``mp4v``) writer that opens on the first frame and fails loudly."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps > 0 else 10.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame_bgr: npt.NDArray[np.uint8]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame_bgr.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot write this video file")
        self._writer.write(frame_bgr)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
