"""Key / reference pair dataset (reference a.7, a.9, h.2) on hand-made and synthetic data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from qdtrack.cli import main as cli_main
from qdtrack.data.mot import MotTable, SeqInfo, write_mot_txt, write_seqinfo
from qdtrack.data.pairs import (
    NO_MATCH,
    PairDataset,
    TrainPair,
    build_pair_dataset,
    collate_pairs,
    crowdhuman_source,
    mot_source,
    sample_ref_position,
    usable_box_mask,
)
from qdtrack.model.sampling import match_instances

# (frame, MOT id, left, top, width, height, class)
Row = tuple[int, int, float, float, float, float, int]


def write_sequence(
    seq_dir: Path, rows: list[Row], *, frames: int, width: int = 96, height: int = 64
) -> Path:
    """A tiny MOT17-style sequence: solid-colour jpgs, seqinfo.ini and gt/gt.txt."""
    (seq_dir / "img1").mkdir(parents=True)
    for frame in range(1, frames + 1):
        image = np.full((height, width, 3), 40 * frame % 255, np.uint8)
        cv2.imwrite(str(seq_dir / "img1" / f"{frame:06d}.jpg"), image)
    write_seqinfo(
        seq_dir,
        SeqInfo(name=seq_dir.name, seq_length=frames, im_width=width, im_height=height),
    )
    n = len(rows)
    table = MotTable(
        frames=[r[0] for r in rows],
        ids=[r[1] for r in rows],
        boxes_tlwh=np.array([r[2:6] for r in rows], np.float32).reshape(n, 4),
        scores=np.ones(n),
        classes=[r[6] for r in rows],
        visibility=np.ones(n),
    )
    (seq_dir / "gt").mkdir()
    write_mot_txt(seq_dir / "gt" / "gt.txt", table, kind="gt")
    return seq_dir


# Frame 1: MOT ids 5, 7, 9 (+ a car); frame 2: ids 5, 7, 9, 11. write_mot_txt sorts rows by
# (frame, id); mot2coco numbers in order of first appearance: 5 -> 0, 7 -> 1, 9 -> 2, 11 -> 3.
# The car (class 3) is dropped.
TWO_FRAME_ROWS: list[Row] = [
    (1, 5, 2, 2, 20, 40, 1),
    (1, 7, 30, 4, 20, 40, 1),
    (1, 9, 60, 6, 20, 40, 1),
    (1, 3, 10, 10, 30, 20, 3),
    (2, 9, 62, 6, 20, 40, 1),
    (2, 7, 32, 4, 20, 40, 1),
    (2, 5, 4, 2, 20, 40, 1),
    (2, 11, 80, 20, 10, 30, 1),
]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    argv = ["data", "synth", "--out", str(root), "--seed", "0", "--frames", "20"]
    argv += ["--train-seqs", "1", "--val-seqs", "1", "--crowdhuman-images", "3"]
    assert cli_main(argv) == 0
    return root


@pytest.fixture
def two_frame_seq(tmp_path: Path) -> Path:
    return write_sequence(tmp_path / "TINY-01", TWO_FRAME_ROWS, frames=2)


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_ids", "ref_ids", "expected"),
    [
        ([0, 1, 2], [2, 1, 0], [NO_MATCH, 1, 0]),  # id 0 is never matched (reference h.2)
        ([3, 4], [5, 6], [NO_MATCH, NO_MATCH]),
        ([], [1], []),
        ([1, 2], [], [NO_MATCH, NO_MATCH]),
        ([7, 7], [7, 7], [0, 0]),  # first occurrence, like list.index
    ],
)
def test_match_instances(key_ids, ref_ids, expected):
    result = match_instances(
        torch.tensor(key_ids, dtype=torch.int64), torch.tensor(ref_ids, dtype=torch.int64)
    ).numpy()
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, expected)


def test_usable_box_mask_follows_parse_ann_info():
    boxes = np.array(
        [
            [10, 10, 20, 20],  # inside
            [-30, -30, -1, -1],  # outside (no overlap)
            [95, 5, 120, 30],  # partly outside: kept
            [10, 10, 10.5, 30],  # w < 1
            [100, 0, 110, 10],  # touches the right border only: zero overlap
        ],
        np.float32,
    )
    np.testing.assert_array_equal(usable_box_mask(boxes, 64, 100), [1, 0, 1, 0, 0])


def test_reference_position_is_within_range_and_never_the_key():
    rng = np.random.default_rng(0)
    for n, key in [(20, 0), (20, 19), (20, 10), (3, 1), (2, 0)]:
        seen = {sample_ref_position(rng, key, n, 10) for _ in range(300)}
        expected = set(range(max(0, key - 10), min(key + 10, n - 1) + 1)) - {key}
        assert seen == expected


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


def test_instance_ids_and_match_indices_on_a_two_frame_sequence(two_frame_seq):
    source = mot_source(two_frame_seq, subset="full")
    frames = source.videos[0].frames
    np.testing.assert_array_equal(frames[0].instance_ids, [0, 1, 2])  # car dropped
    np.testing.assert_array_equal(frames[1].instance_ids, [0, 1, 2, 3])
    dataset = PairDataset([source], img_scale=96, seed=0)
    assert len(dataset) == 2
    for index, (key_frame, matches) in enumerate(
        [(1, [NO_MATCH, 1, 2]), (2, [NO_MATCH, 1, 2, NO_MATCH])]
    ):
        pair = dataset[index]
        assert (pair.origin.key_frame, pair.origin.ref_frame) == (key_frame, 3 - key_frame)
        np.testing.assert_array_equal(pair.gt_match_indices, matches)
        np.testing.assert_array_equal(pair.key_labels, np.zeros(len(matches)))
        # Matched rows carry the same instance id; id 0 (MOT id 5) is in both frames.
        for i, j in enumerate(pair.gt_match_indices):
            if j >= 0:
                assert pair.key_instance_ids[i] == pair.ref_instance_ids[j] > 0
        assert 0 in pair.key_instance_ids and 0 in pair.ref_instance_ids


def test_instance_counter_runs_over_the_sequences_of_a_subset(tmp_path):
    write_sequence(tmp_path / "A-01", TWO_FRAME_ROWS, frames=2)
    write_sequence(tmp_path / "B-01", [(1, 5, 2, 2, 20, 40, 1), (2, 5, 3, 2, 20, 40, 1)], frames=2)
    source = mot_source(tmp_path, subset="full")
    assert [v.name for v in source.videos] == ["A-01", "B-01"]
    # A uses ids 0..3; MOT id 5 of B is a different person and takes the next value.
    np.testing.assert_array_equal(source.videos[1].frames[0].instance_ids, [4])
    assert source.name == f"{tmp_path.name}:full"


def test_half_train_uses_frames_up_to_half_plus_one(synth_root):
    seq = synth_root / "train" / "SYNTH-01"
    half_train = mot_source(seq, subset="half-train")
    half_val = mot_source(seq, subset="half-val")
    assert [f.frame_number for f in half_train.videos[0].frames] == list(range(1, 12))
    assert [f.frame_number for f in half_val.videos[0].frames] == list(range(12, 21))
    # Instance ids restart at 0 in each subset.
    assert (
        min(int(f.instance_ids.min()) for f in half_val.videos[0].frames if len(f.boxes_xyxy)) == 0
    )
    dataset = PairDataset([half_train], img_scale=96, seed=1)
    for index in range(len(dataset)):
        origin = dataset[index].origin
        assert origin.key_frame <= 11 and origin.ref_frame <= 11


def test_reference_frame_within_ten_frames_and_never_the_key(synth_root):
    dataset = PairDataset([mot_source(synth_root / "train", subset="full")], img_scale=64, seed=2)
    gaps = set()
    for epoch in range(2):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            origin = dataset[index].origin
            gap = origin.ref_frame - origin.key_frame
            assert gap != 0 and abs(gap) <= 10
            gaps.add(gap)
    assert len(gaps) > 5


def test_crowdhuman_pairs_use_the_same_image_with_independent_crops(synth_root):
    source = crowdhuman_source(synth_root / "crowdhuman" / "annotation_train.odgt")
    dataset = PairDataset([source], img_scale=64, seed=0)
    shifts = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            pair = dataset[index]
            assert pair.origin.key_image_path == pair.origin.ref_image_path
            np.testing.assert_array_equal(
                pair.key_instance_ids, np.arange(len(pair.key_boxes_xyxy))
            )
            np.testing.assert_array_equal(pair.gt_match_indices[1:], pair.key_instance_ids[1:])
            assert pair.gt_match_indices[0] == NO_MATCH  # box 0 never matches
            # Same image, resize, colour and flip: the boxes differ only by the crop shift.
            shift = pair.key_boxes_xyxy - pair.ref_boxes_xyxy
            np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-4)
            shifts.append(float(np.abs(shift).max()))
    assert any(s > 0 for s in shifts) and any(s == 0 for s in shifts)


# --------------------------------------------------------------------------------------
# Dataset and collate
# --------------------------------------------------------------------------------------


def _assert_same_pair(a: TrainPair, b: TrainPair) -> None:
    assert a.origin == b.origin
    np.testing.assert_array_equal(a.key_image, b.key_image)
    np.testing.assert_array_equal(a.ref_boxes_xyxy, b.ref_boxes_xyxy)
    np.testing.assert_array_equal(a.gt_match_indices, b.gt_match_indices)


def test_synthetic_dataset_yields_deterministic_pairs(synth_root):
    dataset = build_pair_dataset(
        mot_root=synth_root / "train",
        crowdhuman_odgt=synth_root / "crowdhuman" / "annotation_train.odgt",
        img_scale=96,
        seed=3,
    )
    assert len(dataset) == sum(len(s.keys) for s in dataset.sources)
    assert [s.name for s in dataset.sources] == ["train:half-train", "crowdhuman"]
    for index in (0, len(dataset) - 1, -1):
        pair = dataset[index]
        assert pair.key_image.dtype == np.float32 and pair.key_image.ndim == 3
        assert max(pair.key_image.shape[:2]) <= 96
        assert pair.key_boxes_xyxy.dtype == np.float32 and pair.key_instance_ids.dtype == np.int64
        assert (pair.gt_match_indices != NO_MATCH).any()
        _assert_same_pair(pair, dataset[index])
    again = build_pair_dataset(mot_root=synth_root / "train", img_scale=96, seed=3)
    _assert_same_pair(again[4], dataset[4])  # same seed, epoch and index
    dataset.set_epoch(1)
    assert not np.array_equal(dataset[4].key_image, again[4].key_image)
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_collate_pads_to_multiples_of_32(synth_root):
    dataset = build_pair_dataset(
        mot_root=synth_root / "train",
        crowdhuman_odgt=synth_root / "crowdhuman" / "annotation_train.odgt",
        img_scale=100,
    )
    items = [dataset[0], dataset[len(dataset) - 1], dataset[3]]
    batch = collate_pairs(items)
    assert len(batch) == 3
    for images, key in ((batch.key_images, "key"), (batch.ref_images, "ref")):
        b, c, h, w = images.tensor.shape
        assert (b, c) == (3, 3) and h % 32 == 0 and w % 32 == 0
        for i, item in enumerate(items):
            image = getattr(item, f"{key}_image")
            assert images.image_sizes[i] == image.shape[:2]
        assert images.original_sizes[0] == getattr(items[0], f"{key}_original_size")
    torch.testing.assert_close(
        batch.key_images.scale_factors[0], torch.from_numpy(items[0].key_scale_factor)
    )
    assert [t.dtype for t in batch.key_boxes_xyxy] == [torch.float32] * 3
    assert [t.dtype for t in batch.gt_match_indices] == [torch.int64] * 3
    assert batch.key_boxes_xyxy[1].shape == (len(items[1].key_instance_ids), 4)
    assert batch.to("cpu").origins == batch.origins
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=collate_pairs)
    assert next(iter(loader)).key_images.tensor.shape[0] == 2


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_missing_mot_image_is_named(two_frame_seq):
    missing = two_frame_seq / "img1" / "000002.jpg"
    missing.unlink()
    with pytest.raises(ValueError, match=r"000002\.jpg"):
        mot_source(two_frame_seq, subset="full")


def test_unreadable_image_is_named_when_loaded(two_frame_seq):
    dataset = PairDataset([mot_source(two_frame_seq, subset="full")], img_scale=64)
    bad = two_frame_seq / "img1" / "000001.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(FileNotFoundError, match=r"000001\.jpg"):
        dataset[0]


def test_missing_crowdhuman_image_is_named(synth_root, tmp_path):
    odgt = synth_root / "crowdhuman" / "annotation_train.odgt"
    with pytest.raises(FileNotFoundError, match=r"\.jpg: CrowdHuman image missing"):
        crowdhuman_source(odgt, image_dir=tmp_path)


def test_source_without_usable_frames_raises(tmp_path):
    rows: list[Row] = [(1, 1, 5, 5, 20, 20, 3), (2, 1, 5, 5, 20, 20, 7), (2, 2, 200, 5, 9, 9, 1)]
    write_sequence(tmp_path / "CARS-01", rows, frames=2)  # a car, a static person, off-image
    with pytest.raises(ValueError, match="no usable training frames"):
        mot_source(tmp_path, subset="full")


def test_bad_arguments_raise(two_frame_seq):
    with pytest.raises(ValueError, match="subset"):
        mot_source(two_frame_seq, subset="half")  # type: ignore[arg-type]
    source = mot_source(two_frame_seq, subset="full")
    with pytest.raises(ValueError, match="frame_range"):
        PairDataset([source], frame_range=0)
    with pytest.raises(ValueError, match="at least one source"):
        PairDataset([])
    with pytest.raises(ValueError, match="mot_root"):
        build_pair_dataset()


def test_pairs_do_not_depend_on_the_worker(synth_root):
    dataset = build_pair_dataset(mot_root=synth_root / "train", img_scale=64, seed=5)
    dataset.set_epoch(2)
    serial = [collate_pairs([dataset[i]]) for i in range(len(dataset))]
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, num_workers=2, collate_fn=collate_pairs
    )
    for alone, from_worker in zip(serial, loader, strict=True):
        assert alone.origins == from_worker.origins
        assert torch.equal(alone.key_images.tensor, from_worker.key_images.tensor)
