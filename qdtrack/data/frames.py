"""Frame sources: a video file, an image folder or a MOTChallenge sequence folder.

Every source yields ``(frame_number, image)`` pairs: 1-based frame numbers (decoded frame
``k`` of a video is MOT frame ``k``) and BGR ``uint8`` arrays of shape (H, W, 3).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from qdtrack.data.mot import MotSequence, SeqInfo, read_seqinfo, write_seqinfo
from qdtrack.io_utils import atomic_write

Image = npt.NDArray[np.uint8]
Frame = tuple[int, Image]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_FPS = 30.0


def _check_range(start: int, stop: int | None) -> None:
    if start < 1:
        raise ValueError(f"start must be >= 1 (frames are 1-based), got {start}")
    if stop is not None and stop < start:
        raise ValueError(f"stop must be >= start, got start={start}, stop={stop}")


class FrameSource:
    """Base class: iterate ``(frame_number, BGR image)`` over frames ``start .. stop``.

    Attributes:
        path: the video file or folder.
        fps: frames per second (``seqinfo.ini`` frameRate when available).
        size: (width, height) in pixels.
        start: first 1-based frame yielded.
        stop: last 1-based frame yielded (inclusive), or ``None`` for the end.
    """

    path: Path
    fps: float
    size: tuple[int, int]
    start: int
    stop: int | None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (a no-op for image folders)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ImageFrames(FrameSource):
    """Frames stored as image files; frame ``k`` is ``image_paths[k - 1]``."""

    def __init__(
        self,
        path: Path,
        image_paths: Sequence[Path],
        *,
        fps: float = DEFAULT_FPS,
        size: tuple[int, int] | None = None,
        start: int = 1,
        stop: int | None = None,
    ) -> None:
        """Wrap a list of image files.

        Args:
            path: the folder (used in messages).
            image_paths: one file per frame, in frame order.
            fps: frame rate to report.
            size: (width, height); read from the first image when ``None``.
            start: first 1-based frame to yield.
            stop: last 1-based frame to yield (inclusive); ``None`` = the last image.
        """
        _check_range(start, stop)
        if not image_paths:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
        self.path = path
        self.image_paths = list(image_paths)
        self.fps = fps
        self.start = start
        self.stop = stop
        if size is None or size[0] <= 0 or size[1] <= 0:
            first = _read_image(self.image_paths[0])
            size = (int(first.shape[1]), int(first.shape[0]))
        self.size = size

    def _last(self) -> int:
        n = len(self.image_paths)
        return n if self.stop is None else min(self.stop, n)

    def __len__(self) -> int:
        return max(0, self._last() - self.start + 1)

    def __iter__(self) -> Iterator[Frame]:
        for frame in range(self.start, self._last() + 1):
            yield frame, _read_image(self.image_paths[frame - 1])


class VideoFrames(FrameSource):
    """Frames decoded from a video file with ``cv2.VideoCapture``.

    ``len()`` comes from the container's frame count (``CAP_PROP_FRAME_COUNT``), which
    is an estimate for some codecs; iteration yields what the decoder actually returns.
    """

    def __init__(
        self,
        path: Path,
        *,
        fps: float | None = None,
        start: int = 1,
        stop: int | None = None,
    ) -> None:
        """Open a video.

        Args:
            path: the video file.
            fps: frame rate to report instead of the container's.
            start: first 1-based frame to yield.
            stop: last 1-based frame to yield (inclusive); ``None`` = until decoding ends.

        Raises:
            ValueError: OpenCV cannot open the file.
        """
        _check_range(start, stop)
        self.path = path
        self.start = start
        self.stop = stop
        self._capture: cv2.VideoCapture | None = self._open()
        capture = self._capture
        container_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps else (container_fps if container_fps > 0 else DEFAULT_FPS)
        self.size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self._frame_count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self._fresh = True

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise ValueError(f"{self.path}: OpenCV cannot open this file as a video")
        return capture

    def __len__(self) -> int:
        last = self._frame_count if self.stop is None else min(self.stop, self._frame_count)
        return max(0, last - self.start + 1)

    def __iter__(self) -> Iterator[Frame]:
        # Reuse the capture opened in __init__ once; later passes decode from scratch.
        if self._capture is None or not self._fresh:
            self.close()
            self._capture = self._open()
        self._fresh = False
        capture = self._capture
        frame = 0
        # Skip by decoding (grab) rather than seeking: seeking is inexact for many codecs.
        while frame + 1 < self.start:
            if not capture.grab():
                return
            frame += 1
        while self.stop is None or frame < self.stop:
            ok, image = capture.read()
            if not ok or image is None:
                return
            frame += 1
            yield frame, np.ascontiguousarray(image, dtype=np.uint8)

    def close(self) -> None:
        """Release the decoder."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def _read_image(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image")
    return np.asarray(image, dtype=np.uint8)


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def open_frames(source: str | Path, *, start: int = 1, stop: int | None = None) -> FrameSource:
    """Open a video file, an image folder or a MOTChallenge sequence folder.

    A folder with ``seqinfo.ini`` is read as a sequence (``<imDir>/<frame:06d><imExt>``
    for frames 1..seqLength, fps and size from the ini); any other folder yields its
    ``*.jpg`` / ``*.jpeg`` / ``*.png`` files in sorted name order. A video beside a
    ``seqinfo.ini`` reports that file's frameRate (container rates can be wrong, e.g.
    PETS09-S2L1's AVI says 10 fps for 7 fps footage).

    Args:
        source: the video file or folder.
        start: first 1-based frame to yield.
        stop: last 1-based frame to yield (inclusive), ``None`` for the end.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: no images in the folder, a missing sequence image, a file OpenCV
            cannot open, or an invalid frame range (the message names the path).
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or folder")
    if path.is_file():
        ini = path.parent / "seqinfo.ini"
        fps = read_seqinfo(ini).frame_rate if ini.is_file() else None
        return VideoFrames(path, fps=fps, start=start, stop=stop)
    if (path / "seqinfo.ini").is_file():
        info = read_seqinfo(path)
        return ImageFrames(
            path,
            MotSequence(root=path, info=info).image_paths(),
            fps=info.frame_rate,
            size=(info.im_width, info.im_height),
            start=start,
            stop=stop,
        )
    return ImageFrames(path, _folder_images(path), start=start, stop=stop)


def video_to_sequence(
    video: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    annotations: str | Path | None = None,
    jpeg_quality: int = 95,
) -> SeqInfo:
    """Decode a video into a MOTChallenge sequence folder (``img1/000001.jpg``, seqinfo.ini).

    ``annotations`` may name a sequence folder (or its ``seqinfo.ini``) whose ``gt/`` and
    ``det/`` files and frame rate are copied along, e.g. PETS09-S2L1, which ships only the
    AVI. Frames are written atomically; a finished folder is reused as it is.

    Returns:
        The written sequence's :class:`SeqInfo`.
    """
    out = Path(out_dir)
    ann = Path(annotations) if annotations is not None else None
    if ann is not None and ann.is_file():
        ann = ann.parent
    ann_info = read_seqinfo(ann) if ann is not None else None
    if (out / "seqinfo.ini").is_file():
        return read_seqinfo(out)
    with open_frames(video) as frames:
        fps = ann_info.frame_rate if ann_info is not None else frames.fps
        count = 0
        for frame_number, image in frames:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise ValueError(f"{video}: cannot encode frame {frame_number}")
            with atomic_write(out / "img1" / f"{frame_number:06d}.jpg", "wb") as handle:
                handle.write(data.tobytes())
            count = frame_number
        width, height = frames.size
    if ann is not None:
        for sub in ("gt", "det"):
            if (ann / sub).is_dir():
                for src in (ann / sub).glob("*.txt"):
                    with atomic_write(out / sub / src.name) as handle:
                        handle.write(src.read_text(encoding="utf-8"))
    info = SeqInfo(
        name=name or (ann_info.name if ann_info else Path(video).stem),
        seq_length=count,
        frame_rate=fps,
        im_width=width,
        im_height=height,
    )
    write_seqinfo(out, info)  # last: its presence marks a finished folder
    return info
