"""Frame sources: PETS09 video, image folders written with cv2, MOT sequence folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from qdtrack.data.frames import open_frames, video_to_sequence
from qdtrack.data.mot import SeqInfo, write_seqinfo


def _write_images(
    folder: Path, count: int, *, suffix: str = ".png", size: tuple[int, int] = (32, 24)
) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(count):
        image = np.full((size[1], size[0], 3), (index * 40, 255 - index * 40, 7), np.uint8)
        image[0, 0] = (1, 2, 3)  # BGR order survives the round trip
        assert cv2.imwrite(str(folder / f"{index + 1:06d}{suffix}"), image)
        images.append(image)
    return images


@pytest.mark.integration
def test_pets09_video(pets_dir: Path) -> None:
    video = pets_dir / "vtest.avi"
    with open_frames(video, stop=3) as source:
        assert source.size == (768, 576)
        assert source.fps == 7  # seqinfo.ini beside the video, not the AVI's 10 fps
        assert len(source) == 3
        first = list(source)
        # A second pass decodes from the start again.
        assert [n for n, _ in source] == [1, 2, 3]
    assert [n for n, _ in first] == [1, 2, 3]
    for _, image in first:
        assert image.shape == (576, 768, 3) and image.dtype == np.uint8
    assert not np.array_equal(first[0][1], first[2][1])

    with open_frames(video) as source:
        assert len(source) == 795
        count, last = 0, None
        for count, image in source:  # noqa: B007
            last = image
    assert count == 795 and last is not None

    with open_frames(video, start=794) as source:
        tail = list(source)
    assert [n for n, _ in tail] == [794, 795]
    np.testing.assert_array_equal(tail[-1][1], last)


def test_image_folder(tmp_path: Path) -> None:
    images = _write_images(tmp_path / "frames", 4)
    (tmp_path / "frames" / "notes.txt").write_text("not an image")
    with open_frames(tmp_path / "frames") as source:
        assert len(source) == 4
        assert source.size == (32, 24)
        assert source.fps == 30
        frames = list(source)
    assert [n for n, _ in frames] == [1, 2, 3, 4]
    for (_, image), expected in zip(frames, images, strict=True):
        np.testing.assert_array_equal(image, expected)
    source = open_frames(tmp_path / "frames", start=2, stop=3)
    assert len(source) == 2
    assert [n for n, _ in source] == [2, 3]
    assert [n for n, _ in open_frames(tmp_path / "frames", start=3, stop=99)] == [3, 4]


def test_sequence_folder(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ-01"
    write_seqinfo(
        seq, SeqInfo(name="SEQ-01", seq_length=5, frame_rate=14, im_width=32, im_height=24)
    )
    _write_images(seq / "img1", 5, suffix=".jpg")
    source = open_frames(seq, start=4)
    assert source.fps == 14 and source.size == (32, 24)
    frames = list(source)
    assert [n for n, _ in frames] == [4, 5]
    assert frames[0][1].shape == (24, 32, 3)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.avi"):
        open_frames(tmp_path / "missing.avi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images"):
        open_frames(tmp_path / "empty")
    bogus = tmp_path / "bogus.avi"
    bogus.write_bytes(b"this is not a video")
    with pytest.raises(ValueError, match=r"bogus\.avi"):
        open_frames(bogus)
    _write_images(tmp_path / "broken", 2)
    (tmp_path / "broken" / "000003.png").write_bytes(b"garbage")
    source = open_frames(tmp_path / "broken")
    with pytest.raises(ValueError, match=r"000003\.png: cannot read image"):
        list(source)
    with pytest.raises(ValueError, match="start must be >= 1"):
        open_frames(tmp_path / "broken", start=0)
    with pytest.raises(ValueError, match="stop must be >= start"):
        open_frames(tmp_path / "broken", start=3, stop=2)
    seq = tmp_path / "SEQ"
    write_seqinfo(seq, SeqInfo(name="SEQ", seq_length=3))
    _write_images(seq / "img1", 2, suffix=".jpg")
    with pytest.raises(ValueError, match=r"000003\.jpg"):
        open_frames(seq)


def test_video_to_sequence_round_trip(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5.0, (64, 48))
    for k in range(6):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    ann = tmp_path / "ann"
    (ann / "gt").mkdir(parents=True)
    (ann / "gt" / "gt.txt").write_text("1,1,1,1,10,10,1,1,1\n")
    write_seqinfo(ann, SeqInfo(name="CLIP", seq_length=6, frame_rate=7))
    out = tmp_path / "seq"
    info = video_to_sequence(video, out, annotations=ann)
    assert (info.name, info.seq_length, info.frame_rate) == ("CLIP", 6, 7)
    assert (info.im_width, info.im_height) == (64, 48)
    assert (out / "gt" / "gt.txt").read_text() == "1,1,1,1,10,10,1,1,1\n"
    with open_frames(out) as frames:
        images = [image for _, image in frames]
    assert len(images) == 6 and abs(int(images[3].mean()) - 120) <= 3
    # a finished folder is reused, not rewritten
    stamp = (out / "img1" / "000001.jpg").stat().st_mtime_ns
    assert video_to_sequence(video, out) == info
    assert (out / "img1" / "000001.jpg").stat().st_mtime_ns == stamp
