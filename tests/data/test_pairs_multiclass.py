"""Multi-class training pairs: COCO / LVIS and TAO sources, labels, oversampling, "lvis" mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from qdtrack.data.pairs import (
    NO_MATCH,
    PairDataset,
    PairFrame,
    PairSource,
    PairVideo,
    TrainPair,
    coco_source,
    key_labels,
    repeat_factors,
    tao_source,
)
from qdtrack.data.transforms import LVIS_SCALES, ImageBoxes, augment_pair_multiscale

WIDTH, HEIGHT = 96, 64
CLASS_NAMES = ("car_(automobile)", "person", "truck")
CAR, PERSON, TRUCK = 0, 1, 2
CATEGORY_MAP = {"car": "car_(automobile)"}
CATEGORIES = [
    {"id": 1, "name": "person"},
    {"id": 3, "name": "car"},
    {"id": 7, "name": "zebra"},
    {"id": 8, "name": "truck"},
]
#: "lvis" mode with one small scale: a 96 x 64 image becomes 144 x 96 (factor 1.5).
SMALL_SCALES = [(200, 96)]


def write_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))


def box(ann_id: int, image_id: int, category_id: int, xywh: list[float], **extra: Any) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": xywh,
        "area": xywh[2] * xywh[3],
        **extra,
    }


# --------------------------------------------------------------------------------------
# COCO / LVIS
# --------------------------------------------------------------------------------------

# Image 10: person, car, an off-image person (dropped by the load filter), a zebra (not a
# class), a crowd car, a truck. Image 11: only a zebra (not a key frame, no file on disk).
# Image 12: truck, person and a zero-area person.
COCO_ANNOTATIONS = [
    box(1, 10, 1, [2, 3, 20, 30]),
    box(2, 10, 3, [40, 8, 30, 20]),
    box(3, 10, 1, [200, 5, 10, 10]),
    box(4, 10, 7, [5, 40, 10, 10]),
    box(5, 10, 3, [0, 0, 50, 50], iscrowd=1),
    box(6, 10, 8, [60, 30, 20, 20]),
    box(7, 11, 7, [5, 5, 10, 10]),
    box(8, 12, 8, [10, 10, 30, 30]),
    box(9, 12, 1, [50, 10, 20, 40]),
    {**box(10, 12, 1, [5, 5, 10, 10]), "area": 0},
]
IMAGE_10_BOXES_XYXY = np.array([[2, 3, 22, 33], [40, 8, 70, 28], [60, 30, 80, 50]], np.float32)
IMAGE_10_LABELS = [PERSON, CAR, TRUCK]


@pytest.fixture
def coco_files(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "train2017"
    write_image(images / "a.jpg", 1)
    write_image(images / "c.jpg", 2)
    data = {
        "categories": CATEGORIES,
        "images": [
            {"id": i, "file_name": name, "height": HEIGHT, "width": WIDTH}
            for i, name in ((10, "a.jpg"), (11, "b.jpg"), (12, "c.jpg"))
        ],
        "annotations": COCO_ANNOTATIONS,
    }
    path = tmp_path / "lvis_tiny.json"
    path.write_text(json.dumps(data))
    return path, images


def _coco(
    files: tuple[Path, Path], category_map: dict[str, str] | None = CATEGORY_MAP
) -> PairSource:
    path, images = files
    return coco_source(path, image_dir=images, class_names=CLASS_NAMES, category_map=category_map)


def test_coco_source_frames_labels_and_dropped_count(coco_files):
    source = _coco(coco_files)
    assert source.name == "lvis_tiny"
    (video,) = source.videos
    assert video.still and [f.frame_number for f in video.frames] == [10, 12]
    assert source.keys == ((0, 0), (0, 1))
    first, second = video.frames
    assert first.image_path.name == "a.jpg" and first.instance_ids is None
    np.testing.assert_array_equal(first.labels, [PERSON, CAR, PERSON, TRUCK])
    np.testing.assert_array_equal(second.labels, [TRUCK, PERSON])
    # Zebra (x2), the crowd car and the zero-area person are dropped.
    assert source.dropped_annotations == 4
    # Without the category map "car" is not a class: the (non-crowd) car is dropped too.
    assert _coco(coco_files, category_map=None).dropped_annotations == 5


def _assert_lvis_boxes(pair: TrainPair) -> None:
    expected = IMAGE_10_BOXES_XYXY * 1.5
    if pair.flipped:
        expected = expected.copy()
        expected[:, [0, 2]] = 144 - expected[:, [2, 0]]
    np.testing.assert_allclose(pair.key_boxes_xyxy, expected, atol=1e-4)
    np.testing.assert_allclose(pair.ref_boxes_xyxy, expected, atol=1e-4)


def test_coco_pairs_keep_labels_through_filter_and_flip(coco_files):
    dataset = PairDataset([_coco(coco_files)], augment="lvis", lvis_scales=SMALL_SCALES, seed=4)
    flips = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        pair = dataset[0]
        assert pair.origin.key_frame == pair.origin.ref_frame == 10
        assert pair.key_image.shape == (96, 144, 3)
        np.testing.assert_allclose(pair.key_scale_factor, [1.5] * 4)
        # The off-image person is gone; the labels follow the remaining boxes.
        np.testing.assert_array_equal(pair.key_labels, IMAGE_10_LABELS)
        np.testing.assert_array_equal(pair.ref_labels, IMAGE_10_LABELS)
        np.testing.assert_array_equal(pair.key_instance_ids, [0, 1, 2])
        np.testing.assert_array_equal(pair.gt_match_indices, [NO_MATCH, 1, 2])
        _assert_lvis_boxes(pair)
        flips.add(pair.flipped)
    assert flips == {True, False}


def test_coco_pairs_with_the_mot_augmentation(coco_files):
    dataset = PairDataset([_coco(coco_files)], img_scale=64, seed=1)
    for index, labels in ((0, IMAGE_10_LABELS), (1, [TRUCK, PERSON])):
        pair = dataset[index]
        np.testing.assert_array_equal(pair.key_labels, labels)
        np.testing.assert_array_equal(pair.ref_labels, labels)
        assert max(pair.key_image.shape[:2]) <= 64


def test_coco_source_errors(coco_files, tmp_path):
    path, images = coco_files
    (images / "c.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"c\.jpg: image missing"):
        _coco(coco_files)
    with pytest.raises(ValueError, match="none of its 4 categories is in class_names"):
        coco_source(path, image_dir=images, class_names=["bicycle"])


def test_lvis_v05_coco_2014_names_fall_back_to_2017_names(tmp_path):
    write_image(tmp_path / "000000000012.jpg")
    data = {
        "categories": CATEGORIES,
        "images": [
            {"id": 12, "file_name": "COCO_train2014_000000000012.jpg", "height": 64, "width": 96}
        ],
        "annotations": [box(1, 12, 1, [1, 1, 20, 20])],
    }
    path = tmp_path / "lvis_v0.5_train.json"
    path.write_text(json.dumps(data))
    source = coco_source(path, image_dir=tmp_path, class_names=CLASS_NAMES)
    assert source.videos[0].frames[0].image_path == tmp_path / "000000000012.jpg"


# --------------------------------------------------------------------------------------
# TAO
# --------------------------------------------------------------------------------------

# track id -> (category id, label, video id); track 7 is a zebra (not a class).
TRACKS = {
    5: (1, PERSON, 1),
    6: (3, CAR, 1),
    7: (7, None, 1),
    8: (8, TRUCK, 1),
    10: (3, CAR, 2),
    0: (1, PERSON, 3),
    9: (3, CAR, 3),
}
# (image id, video id, frame index): video 1 listed out of order; video 2 has one frame.
TAO_IMAGES = [(101, 1, 60), (100, 1, 0), (102, 1, 30), (200, 2, 0), (300, 3, 0), (301, 3, 1)]
# (image id, track id, xywh); the track 8 box of frame 0 is off the image.
TAO_BOXES = [
    (100, 5, [2, 3, 20, 30]),
    (100, 6, [40, 8, 30, 20]),
    (100, 8, [300, 0, 10, 10]),
    (102, 6, [42, 8, 30, 20]),
    (102, 5, [4, 3, 20, 30]),
    (101, 5, [6, 3, 20, 30]),
    (101, 7, [50, 20, 10, 10]),
    (101, 8, [60, 30, 20, 20]),
    (200, 10, [1, 1, 5, 5]),
    (300, 0, [10, 10, 20, 20]),
    (300, 9, [40, 10, 20, 20]),
    (301, 9, [41, 10, 20, 20]),
    (301, 0, [11, 10, 20, 20]),
]


def _tao_data() -> dict[str, Any]:
    video_of = {image_id: video for image_id, video, _ in TAO_IMAGES}
    return {
        "videos": [{"id": v, "name": f"train/v{v}"} for v in (1, 2, 3)],
        "images": [
            {
                "id": image_id,
                "video_id": video,
                "frame_index": frame,
                "file_name": f"v{video}/{frame:04d}.jpg",
                "width": WIDTH,
                "height": HEIGHT,
            }
            for image_id, video, frame in TAO_IMAGES
        ],
        "tracks": [
            {"id": track, "category_id": category, "video_id": video}
            for track, (category, _, video) in TRACKS.items()
        ],
        "annotations": [
            {
                **box(i, image_id, TRACKS[track][0], xywh),
                "video_id": video_of[image_id],
                "track_id": track,
            }
            for i, (image_id, track, xywh) in enumerate(TAO_BOXES)
        ],
        "categories": CATEGORIES,
    }


@pytest.fixture
def tao_files(tmp_path: Path) -> tuple[Path, Path]:
    data = _tao_data()
    for image in data["images"]:
        if image["video_id"] != 2:  # video 2 has one frame: never used, never checked
            write_image(tmp_path / "frames" / image["file_name"], image["id"])
    path = tmp_path / "tao_train.json"
    path.write_text(json.dumps(data))
    return path, tmp_path / "frames"


def _tao(files: tuple[Path, Path]) -> PairSource:
    path, images = files
    return tao_source(path, image_dir=images, class_names=CLASS_NAMES, category_map=CATEGORY_MAP)


def test_tao_source_videos_frames_ids_and_labels(tao_files):
    source = _tao(tao_files)
    assert [v.name for v in source.videos] == ["train/v1", "train/v3"]  # v2: one frame
    video = source.videos[0]
    assert not video.still
    assert [f.frame_number for f in video.frames] == [0, 30, 60]
    assert [f.image_path.name for f in video.frames] == ["0000.jpg", "0030.jpg", "0060.jpg"]
    np.testing.assert_array_equal(video.frames[0].instance_ids, [5, 6, 8])
    np.testing.assert_array_equal(video.frames[0].labels, [PERSON, CAR, TRUCK])
    np.testing.assert_array_equal(video.frames[2].instance_ids, [5, 8])  # zebra dropped
    assert source.dropped_annotations == 1
    assert len(source.keys) == 5


def test_tao_pairs_match_the_same_track_in_adjacent_frames(tao_files):
    dataset = PairDataset(
        [_tao(tao_files)], frame_range=1, augment="lvis", lvis_scales=SMALL_SCALES, seed=2
    )
    seen = set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            pair = dataset[index]
            origin = pair.origin
            seen.add((origin.video, origin.key_frame, origin.ref_frame))
            for ids, labels in (
                (pair.key_instance_ids, pair.key_labels),
                (pair.ref_instance_ids, pair.ref_labels),
            ):
                np.testing.assert_array_equal(labels, [TRACKS[int(t)][1] for t in ids])
            assert 7 not in pair.key_instance_ids  # the zebra track
            assert 8 not in pair.key_instance_ids or origin.key_frame == 60  # filter
            for i, j in enumerate(pair.gt_match_indices):
                if j != NO_MATCH:
                    assert pair.key_instance_ids[i] == pair.ref_instance_ids[j] > 0
                    assert pair.key_labels[i] == pair.ref_labels[j]
                elif pair.key_instance_ids[i] != 0:  # track 0 never matches (reference h.2)
                    assert pair.key_instance_ids[i] not in pair.ref_instance_ids
            if (origin.video, origin.key_frame) == ("train/v1", 0):
                assert origin.ref_frame == 30  # the adjacent annotated frame
                np.testing.assert_array_equal(pair.key_instance_ids, [5, 6])
                np.testing.assert_array_equal(pair.gt_match_indices, [1, 0])
    assert ("train/v1", 30, 0) in seen and ("train/v1", 30, 60) in seen
    assert all(abs(key - ref) <= 30 for video, key, ref in seen if video == "train/v1")


def test_tao_source_errors(tao_files):
    path, images = tao_files
    (images / "v3" / "0001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"0001\.jpg: TAO image missing"):
        _tao(tao_files)
    data = json.loads(path.read_text())
    data["tracks"][4]["id"] = data["annotations"][8]["track_id"] = -3  # track 10
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"tracks\[\d\]: track id -3 is negative"):
        _tao(tao_files)


# --------------------------------------------------------------------------------------
# Class-balanced oversampling
# --------------------------------------------------------------------------------------


def test_repeat_factors_hand_computed():
    # 5 images (one without boxes): f(0) = 3/5, f(1) = f(2) = 1/5; with thr 0.5,
    # r(0) = max(1, sqrt(0.5 / 0.6)) = 1 and r(1) = r(2) = sqrt(0.5 / 0.2) = sqrt(2.5).
    labels = [[0], [0, 1], [0, 0], [2, 2], []]
    factors = repeat_factors(labels, 0.5)
    np.testing.assert_allclose(factors, [1.0, np.sqrt(2.5), 1.0, np.sqrt(2.5), 1.0])
    np.testing.assert_array_equal(repeat_factors(labels, 0.0), np.ones(5))
    np.testing.assert_allclose(repeat_factors([[0], [1, 0]], 2.0), [np.sqrt(2.0), 2.0])
    with pytest.raises(ValueError, match="oversample_thr"):
        repeat_factors(labels, -1.0)


def test_oversampling_repeats_rare_key_frames(coco_files):
    source = _coco(coco_files)
    # Key labels {person, car, truck} and {truck, person}: f(car) = 1/2, others 1.
    # thr 0.9: r(car) = sqrt(1.8) -> image 10 twice; r(person) = r(truck) = 1.
    assert [sorted(set(labels.tolist())) for labels in key_labels(source)] == [
        [CAR, PERSON, TRUCK],
        [PERSON, TRUCK],
    ]
    dataset = PairDataset(
        [source], augment="lvis", lvis_scales=SMALL_SCALES, oversample_thr=0.9, seed=0
    )
    assert len(dataset) == 3
    assert [dataset[i].origin.key_frame for i in range(3)] == [10, 10, 12]
    np.testing.assert_array_equal(dataset[1].key_image, dataset[1].key_image)  # deterministic
    assert len(PairDataset([source], oversample_thr=None)) == 2


def test_single_class_sources_are_not_oversampled():
    frames = tuple(
        PairFrame(Path(f"{i}.jpg"), i + 1, np.ones((2, 4), np.float32), np.array([1, 2]))
        for i in range(4)
    )
    source = PairSource("mot", (PairVideo("seq", frames),), tuple((0, i) for i in range(4)))
    assert [labels.tolist() for labels in key_labels(source)] == [[0, 0]] * 4
    assert len(PairDataset([source], oversample_thr=1e-3)) == len(PairDataset([source])) == 4


# --------------------------------------------------------------------------------------
# "lvis" augmentation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size_hw", "scales", "expected_hw"),
    [
        ((64, 96), [(200, 96)], (96, 144)),  # short side binds: s = 96 / 64
        ((64, 96), [(100, 90)], (67, 100)),  # long side binds: s = 100 / 96
        ((480, 640), [LVIS_SCALES[0]], (640, 853)),  # s = 640 / 480
        ((480, 640), [LVIS_SCALES[-1]], (800, 1067)),  # s = 800 / 480
        ((1080, 1920), [LVIS_SCALES[-1]], (750, 1333)),  # s = 1333 / 1920
    ],
)
def test_lvis_augmentation_output_size(size_hw, scales, expected_hw):
    height, width = size_hw
    image = np.zeros((height, width, 3), np.float32)
    boxes = np.array([[10, 10, 50, 40]], np.float32)
    pair = augment_pair_multiscale(
        ImageBoxes(image, boxes), ImageBoxes(image, boxes), np.random.default_rng(0), scales=scales
    )
    assert pair is not None
    assert pair.key.image.shape[:2] == pair.ref.image.shape[:2] == expected_hw
    sx, sy = expected_hw[1] / width, expected_hw[0] / height
    np.testing.assert_allclose(pair.scale_factor, [sx, sy, sx, sy], rtol=1e-6)
    assert pair.key_crop_offset == pair.ref_crop_offset == (0, 0)


def test_lvis_augmentation_draws_every_scale_and_rejects_empty_frames():
    image = np.zeros((64, 96, 3), np.float32)
    boxes = np.array([[10, 10, 50, 40]], np.float32)
    frame = ImageBoxes(image, boxes)
    widths = set()
    for seed in range(40):
        pair = augment_pair_multiscale(
            frame, frame, np.random.default_rng(seed), scales=[(200, 64), (200, 96)]
        )
        assert pair is not None
        widths.add(pair.key.image.shape[1])
    assert widths == {96, 144}
    empty = ImageBoxes(image, np.zeros((0, 4), np.float32))
    assert augment_pair_multiscale(frame, empty, np.random.default_rng(0)) is None


def test_bad_dataset_arguments():
    source = PairSource("s", (), ((0, 0),))
    with pytest.raises(ValueError, match="augment must be one of"):
        PairDataset([source], augment="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lvis_scales"):
        PairDataset([source], augment="lvis", lvis_scales=[(0, 10)])
    with pytest.raises(ValueError, match="oversample_thr"):
        PairDataset([source], oversample_thr=float("nan"))
