"""TAO Track AP (TrackEval TAO + TrackMAP) and COCO box AP: hand-computed answers, CLI, bad input.

Every case is a tiny TAO gt written to ``tmp_path`` (no images). Boxes are ``[x, y, w, h]``;
image ids are ``100 * video + frame``. TrackMAP's AP uses 101 recall points 0, 0.01, ..., 1
(COCO style): AP = mean over them of the best precision at recall >= r (0 when unreachable).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gate_helpers import run_gate

from qdtrack.cli import main as cli_main
from qdtrack.evaluation.coco import evaluate_box_ap
from qdtrack.evaluation.tao import evaluate_tao
from qdtrack.gate import check_gate

PERSON, CAR, DOG = 1, 2, 3
CATEGORIES = [
    {"id": PERSON, "name": "person", "frequency": "f"},
    {"id": CAR, "name": "car", "frequency": "f"},
    {"id": DOG, "name": "dog", "frequency": "c"},
]
BOX = [0.0, 0.0, 10.0, 10.0]
FAR = [50.0, 50.0, 10.0, 10.0]
FRAMES = (1, 2, 3)
# TrackMAP's TAO thresholds 0.50, 0.55, ..., 0.75: six of them.
TAO_THRESHOLDS = 6

# A gt or result box: (video, frame, track_id, category_id, bbox).
Box = tuple[int, int, int, int, list[float]]


# ----------------------------------------------------------------------------- helpers


def _image_id(video: int, frame: int) -> int:
    return 100 * video + frame


def _gt_doc(boxes: list[Box], videos: dict[int, dict[str, list[int]]] | None = None) -> dict:
    """TAO gt: ``videos`` maps video id -> extra fields (neg / not-exhaustive ids)."""
    videos = videos or {1: {}}
    return {
        "videos": [
            {
                "id": vid,
                "name": f"dataset/video_{vid}",
                "width": 640,
                "height": 480,
                "neg_category_ids": extra.get("neg", []),
                "not_exhaustive_category_ids": extra.get("nel", []),
            }
            for vid, extra in videos.items()
        ],
        "images": [
            {
                "id": _image_id(vid, frame),
                "video_id": vid,
                "frame_index": 30 * frame,
                "file_name": f"video_{vid}/{frame:06d}.jpg",
                "width": 640,
                "height": 480,
            }
            for vid in videos
            for frame in FRAMES
        ],
        "annotations": [
            {
                "id": i + 1,
                "image_id": _image_id(vid, frame),
                "video_id": vid,
                "track_id": track,
                "category_id": cat,
                "bbox": bbox,
                "area": bbox[2] * bbox[3],
                "iscrowd": 0,
            }
            for i, (vid, frame, track, cat, bbox) in enumerate(boxes)
        ],
        "tracks": sorted(
            ({"id": t, "category_id": c, "video_id": v} for v, _, t, c, _ in boxes),
            key=lambda x: x["id"],
        ),
        "categories": [dict(c) for c in CATEGORIES],
    }


def _tracks(boxes: list[Box], score: float | dict[int, float] = 1.0) -> list[dict]:
    """Result records; ``score`` per track id when a dict."""
    return [
        {
            "image_id": _image_id(vid, frame),
            "video_id": vid,
            "category_id": cat,
            "bbox": bbox,
            "score": score[track] if isinstance(score, dict) else score,
            "track_id": track,
        }
        for vid, frame, track, cat, bbox in boxes
    ]


def _detections(boxes: list[Box], score: float = 1.0) -> list[dict]:
    return [
        {"image_id": _image_id(v, f), "category_id": c, "bbox": b, "score": score}
        for v, f, _, c, b in boxes
    ]


def _write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _case(
    tmp: Path, gt: dict, tracks: list[dict], detections: list[dict] | None = None
) -> tuple[Path, Path]:
    """``tmp/gt/tao.json`` and ``tmp/results/{tracks,detections}.json``."""
    gt_path = _write(tmp / "gt" / "tao.json", gt)
    results = tmp / "results"
    _write(results / "tracks.json", tracks)
    if detections is not None:
        _write(results / "detections.json", detections)
    return gt_path, results


def _track(video: int, track: int, cat: int, bbox: list[float], frames=FRAMES) -> list[Box]:
    return [(video, f, track, cat, bbox) for f in frames]


# ----------------------------------------------------------------------------- Track AP


def test_perfect_tracks_score_100(tmp_path: Path) -> None:
    boxes = _track(1, 1, PERSON, BOX) + _track(1, 2, CAR, FAR) + _track(2, 3, PERSON, FAR)
    gt = _gt_doc(boxes, {1: {}, 2: {}})
    metrics = evaluate_tao(*_case(tmp_path, gt, _tracks(boxes), _detections(boxes)))
    assert metrics["benchmark"] == "TAO" and metrics["sequences"] == {}
    combined = metrics["combined"]
    for name in ("TrackAP", "TrackAP50", "TrackAP75", "TrackAR", "BoxAP", "BoxAP50", "BoxAP75"):
        assert combined[name] == pytest.approx(100.0), name
    # 10x10 boxes are all "small" for COCO: no medium or large gt, so those are undefined.
    assert combined["BoxAPs"] == pytest.approx(100.0)
    assert combined["BoxAPm"] is None and combined["BoxAPl"] is None
    assert set(metrics["classes"]) == {"person", "car"}  # dog has no gt: not evaluated
    assert metrics["classes"]["person"]["GT_Tracks"] == 2
    assert metrics["classes"]["car"]["TrackAP"] == pytest.approx(100.0)


def test_class_average_over_classes_with_gt(tmp_path: Path) -> None:
    # Person and car both have gt; only person is tracked. Car: gt but no tracks -> recall 0
    # -> AP 0 (not "undefined"), so the class average is (100 + 0) / 2 = 50. Dog has no gt
    # anywhere: TrackEval evaluates only classes with gt, so the confident dog track is
    # scored in no class and changes nothing.
    gt_boxes = _track(1, 1, PERSON, BOX) + _track(1, 2, CAR, FAR)
    tracks = _tracks(_track(1, 7, PERSON, BOX) + _track(1, 8, DOG, FAR), score=1.0)
    metrics = evaluate_tao(*_case(tmp_path, _gt_doc(gt_boxes), tracks))
    assert metrics["classes"]["person"]["TrackAP"] == pytest.approx(100.0)
    assert metrics["classes"]["car"]["TrackAP"] == pytest.approx(0.0)
    assert metrics["combined"]["TrackAP"] == pytest.approx(50.0)
    assert metrics["combined"]["TrackAP50"] == pytest.approx(50.0)
    assert "dog" not in metrics["classes"]


def test_shifted_track_iou_between_thresholds(tmp_path: Path) -> None:
    # gt [0,0,10,10] on 3 frames; the track is shifted right by 0, 2, 4 pixels.
    # Intersections 100, 80, 60; unions 100, 120, 140 -> track IoU = 240 / 360 = 2/3.
    # 2/3 passes 0.50, 0.55, 0.60, 0.65 and fails 0.70, 0.75: AP50 = 100, AP75 = 0,
    # TrackAP = TrackAR = 4/6 * 100.
    gt_boxes = _track(1, 1, PERSON, BOX)
    shifted = [(1, f, 5, PERSON, [2.0 * (f - 1), 0.0, 10.0, 10.0]) for f in FRAMES]
    combined = evaluate_tao(*_case(tmp_path, _gt_doc(gt_boxes), _tracks(shifted)))["combined"]
    assert combined["TrackAP50"] == pytest.approx(100.0)
    assert combined["TrackAP75"] == pytest.approx(0.0)
    assert combined["TrackAP"] == pytest.approx(4 / TAO_THRESHOLDS * 100)
    assert combined["TrackAR"] == pytest.approx(4 / TAO_THRESHOLDS * 100)


def test_box_on_frame_without_gt_still_counts(tmp_path: Path) -> None:
    # gt person on frames 1-2 (frame 3 holds only a car). The person track also has an exact
    # box on frame 3. TrackEval's per-frame preprocessing drops that box from the per-frame
    # data, but TrackMAP scores the whole track: IoU = 200 / 300 = 2/3, not 1.
    gt = _gt_doc(_track(1, 1, PERSON, BOX, frames=(1, 2)) + _track(1, 2, CAR, FAR))
    tracks = _tracks(_track(1, 1, PERSON, BOX) + _track(1, 2, CAR, FAR))
    person = evaluate_tao(*_case(tmp_path, gt, tracks))["classes"]["person"]
    assert person["TrackAP50"] == 100.0  # exact: scores are rounded to 1e-9
    assert person["TrackAP75"] == 0.0
    assert person["TrackAP"] == pytest.approx(4 / TAO_THRESHOLDS * 100)


def test_id_switch_splits_gt_track(tmp_path: Path) -> None:
    # One gt track on frames 1-3. The tracker switches id: track A (score 0.8) covers frames
    # 1-2, track B (score 0.9) frame 3, every box exact. Track IoU: A = 200/300 = 2/3,
    # B = 100/300 = 1/3. Ranked by score: B (false positive), then A (true positive up to
    # IoU 0.65): precision 0/1, 1/2, recall 0, 1 -> interpolated precision 0.5 at every recall
    # point -> AP 50 at 0.50..0.65, 0 at 0.70 and 0.75: TrackAP = 4 * 50 / 6.
    # Per box nothing is wrong: the same boxes as detections give BoxAP 100.
    gt_boxes = _track(1, 1, PERSON, BOX)
    a = _track(1, 10, PERSON, BOX, frames=(1, 2))
    b = _track(1, 11, PERSON, BOX, frames=(3,))
    tracks = _tracks(a + b, score={10: 0.8, 11: 0.9})
    case = _case(tmp_path, _gt_doc(gt_boxes), tracks, _detections(gt_boxes))
    combined = evaluate_tao(*case)["combined"]
    assert combined["TrackAP50"] == pytest.approx(50.0)
    assert combined["TrackAP75"] == pytest.approx(0.0)
    assert combined["TrackAP"] == pytest.approx(4 * 50.0 / TAO_THRESHOLDS)
    assert combined["BoxAP"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("video_2", "expected"),
    [
        # Video 2 has no person gt and does not list person as negative: the person track
        # there is dropped (TAO is not exhaustively labelled), not a false positive.
        ({}, 100.0),
        # Person is a verified negative in video 2: the track (score 0.9, above the true
        # positive's 0.5) is a false positive -> precision 0.5 at every recall -> AP 50.
        ({"neg": [PERSON]}, 50.0),
    ],
)
def test_tracks_of_unlabelled_classes(tmp_path: Path, video_2: dict, expected: float) -> None:
    gt_boxes = _track(1, 1, PERSON, BOX) + _track(2, 2, CAR, BOX)
    tracks = _tracks(
        _track(1, 1, PERSON, BOX) + _track(2, 2, CAR, BOX) + _track(2, 3, PERSON, FAR),
        score={1: 0.5, 2: 1.0, 3: 0.9},
    )
    gt = _gt_doc(gt_boxes, {1: {}, 2: video_2})
    metrics = evaluate_tao(*_case(tmp_path, gt, tracks))
    assert metrics["classes"]["person"]["TrackAP"] == pytest.approx(expected)
    assert metrics["classes"]["car"]["TrackAP"] == pytest.approx(100.0)


def test_not_exhaustive_class_ignores_unmatched_tracks(tmp_path: Path) -> None:
    # Person is marked not exhaustively labelled in the video: the unmatched, higher-scored
    # person track is ignored rather than a false positive, so AP stays 100.
    gt = _gt_doc(_track(1, 1, PERSON, BOX), {1: {"nel": [PERSON]}})
    tracks = _tracks(_track(1, 1, PERSON, BOX) + _track(1, 2, PERSON, FAR), {1: 0.5, 2: 0.9})
    assert evaluate_tao(*_case(tmp_path, gt, tracks))["combined"]["TrackAP"] == pytest.approx(100)


def test_track_id_zero_is_an_ordinary_id(tmp_path: Path) -> None:
    # Two gt tracks (BOX, FAR). Tracks: id 0 on BOX (0.9), a duplicate on BOX (0.8), one on FAR
    # (0.7) -> TP, FP, TP: precision 1, 1/2, 2/3 (interpolated 1, 2/3, 2/3), recall 1/2, 1/2,
    # 1. Recall points 0..0.50 (51 of them) get 1, 0.51..1 (50) get 2/3:
    # AP = (51 + 50 * 2/3) / 101. Raw TrackMAP would count the duplicate of track 0 as a
    # second TP (it tests "gt already matched" with match id > 0), giving 100.
    gt = _gt_doc(_track(1, 1, PERSON, BOX) + _track(1, 2, PERSON, FAR))
    boxes = _track(1, 0, PERSON, BOX) + _track(1, 5, PERSON, BOX) + _track(1, 6, PERSON, FAR)
    tracks = _tracks(boxes, score={0: 0.9, 5: 0.8, 6: 0.7})
    combined = evaluate_tao(*_case(tmp_path, gt, tracks))["combined"]
    assert combined["TrackAP"] == pytest.approx((51 + 50 * 2 / 3) / 101 * 100)


def test_no_tracks_scores_zero(tmp_path: Path) -> None:
    combined = evaluate_tao(*_case(tmp_path, _gt_doc(_track(1, 1, PERSON, BOX)), []))["combined"]
    assert combined["TrackAP"] == 0.0 and combined["TrackAR"] == 0.0
    assert "BoxAP" not in combined  # no detections.json beside tracks.json


# ----------------------------------------------------------------------------- box AP


def _coco_gt(tmp: Path, boxes: list[tuple[int, list[float]]]) -> Path:
    """Plain COCO gt (no area / iscrowd: filled in) with images 1 and 2, one category."""
    return _write(
        tmp / "coco_gt.json",
        {
            "images": [{"id": 1, "width": 640, "height": 480}, {"id": 2}],
            "annotations": [
                {"id": i + 1, "image_id": image, "category_id": PERSON, "bbox": bbox}
                for i, (image, bbox) in enumerate(boxes)
            ],
            "categories": [{"id": PERSON, "name": "person"}],
        },
    )


def _det(image: int, bbox: list[float], score: float) -> dict:
    return {"image_id": image, "category_id": PERSON, "bbox": bbox, "score": score}


def test_box_ap_half_recall(tmp_path: Path) -> None:
    # 2 gt boxes, 1 exact detection: recall 0.5 with precision 1. Of the 101 recall points,
    # 0, 0.01, ..., 0.50 (51) get precision 1, the 50 above get 0: AP = 51 / 101 = 50.495%.
    gt = _coco_gt(tmp_path, [(1, BOX), (1, FAR)])
    combined = evaluate_box_ap(gt, [_det(1, BOX, 0.9)])["combined"]
    for name in ("BoxAP", "BoxAP50", "BoxAP75"):
        assert combined[name] == pytest.approx(51 / 101 * 100), name


def test_box_ap_false_positive_ranked_first(tmp_path: Path) -> None:
    # 1 gt; a false positive (0.9) above the true positive (0.8): precision 0, 1/2 at recall
    # 0, 1 -> interpolated precision 1/2 at every recall point -> AP 50 at every IoU.
    gt = _coco_gt(tmp_path, [(1, BOX)])
    detections = _write(
        tmp_path / "res" / "detections.json", [_det(2, BOX, 0.9), _det(1, BOX, 0.8)]
    )
    metrics = evaluate_box_ap(gt, detections.parent)
    assert metrics["benchmark"] == "COCO"
    assert metrics["combined"]["BoxAP"] == pytest.approx(50.0)
    assert metrics["combined"]["BoxAP50"] == pytest.approx(50.0)


def test_box_ap_no_detections(tmp_path: Path) -> None:
    combined = evaluate_box_ap(_coco_gt(tmp_path, [(1, BOX)]), [])["combined"]
    assert combined["BoxAP"] == 0.0 and combined["BoxAPs"] == 0.0
    assert combined["BoxAPl"] is None  # no large gt box: undefined, not 0


# ----------------------------------------------------------------------------- CLI and gates


def _cli(*argv: str) -> int:
    return cli_main(["evaluate", *argv])


def _tao(*argv: str, benchmark: str = "TAO", gate: str = "") -> int:
    """``qdtrack evaluate`` with ``evaluate.benchmark`` (and ``gate.criteria``) set."""
    settings = ["--set", f"evaluate.benchmark={benchmark}"]
    if gate:
        settings += ["--set", f"gate.criteria={gate}"]
    return _cli(*argv, *settings)


@pytest.fixture
def id_switch_case(tmp_path: Path) -> tuple[Path, Path]:
    """The id-switch case: TrackAP 33.3, TrackAP50 50, BoxAP 100."""
    gt_boxes = _track(1, 1, PERSON, BOX) + _track(1, 2, CAR, FAR)
    tracks = _tracks(
        _track(1, 10, PERSON, BOX, frames=(1, 2))
        + _track(1, 11, PERSON, BOX, frames=(3,))
        + _track(1, 12, CAR, FAR),
        score={10: 0.8, 11: 0.9, 12: 1.0},
    )
    return _case(tmp_path, _gt_doc(gt_boxes), tracks, _detections(gt_boxes))


def test_cli_tao_outputs_and_gates(
    id_switch_case: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, results = id_switch_case
    out, summary, per_class = tmp_path / "m.json", tmp_path / "s.json", tmp_path / "c.csv"
    code = _tao("--gt", str(gt.parent), "--results", str(results), "--out", str(out),
                "--summary", str(summary), "--per-sequence-csv", str(per_class),
                gate="TrackAP>=60,BoxAP>=99")  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "person" in printed and "COMBINED" in printed
    # person: (50 * 4) / 6 = 33.33; car: 100 -> class average 66.67.
    doc = json.loads(out.read_text())
    assert doc["combined"]["TrackAP"] == pytest.approx((100 + 200 / 6) / 2)
    assert json.loads(summary.read_text()).keys() == {
        "TrackAP", "TrackAP50", "TrackAP75", "BoxAP", "BoxAP50", "BoxAP75",
    }  # fmt: skip
    rows = list(csv.reader(per_class.open()))
    assert rows[0] == ["class", "TrackAP", "TrackAP50", "TrackAP75"]
    assert [r[0] for r in rows[1:]] == ["person", "car", "COMBINED"]
    assert float(rows[1][2]) == pytest.approx(50.0)

    # The gate decides on Track AP: pass, fail -> 1, zero drop against itself -> 0.
    assert run_gate(tmp_path, summary, "criteria=TrackAP>=60,BoxAP>=99") == 0
    assert "PASS" in capsys.readouterr().out
    assert run_gate(tmp_path, summary, "criteria=TrackAP50>=80,BoxAP>=99") == 1
    assert "TrackAP50 = 75 fails" in capsys.readouterr().err
    assert run_gate(tmp_path, summary, "max_drop=TrackAP=0,BoxAP75=0", champion=out) == 0

    # Box AP needs detections.json: without it there is no BoxAP to gate on.
    (results / "detections.json").unlink()
    assert _tao("--gt", str(gt), "--results", str(results), "--summary", str(summary)) == 0
    assert "BoxAP" not in json.loads(summary.read_text())
    assert run_gate(tmp_path, summary, "criteria=BoxAP>=1") == 2
    assert "BoxAP missing" in capsys.readouterr().err
    # A MOTChallenge metric does not exist for TAO; half-val is a MOTChallenge split.
    assert _tao("--gt", str(gt), "--results", str(results), gate="HOTA>=1") == 2
    assert _tao("--gt", str(gt), "--results", str(results),
                "--set", "data.val_split=half-val") == 2  # fmt: skip
    assert "half-val" in capsys.readouterr().err


def test_cli_coco(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = _coco_gt(tmp_path, [(1, BOX), (1, FAR)])
    results = _write(tmp_path / "res" / "detections.json", [_det(1, BOX, 0.9)])
    summary = tmp_path / "s.json"
    assert _tao("--gt", str(gt), "--results", str(results.parent), "--summary", str(summary),
                benchmark="COCO", gate="BoxAP>=50,BoxAP50>50.4") == 0  # fmt: skip
    assert "BoxAP" in capsys.readouterr().out
    assert json.loads(summary.read_text())["BoxAP"] == pytest.approx(51 / 101 * 100)
    assert run_gate(tmp_path, summary, "criteria=BoxAP>=51") == 1
    assert _tao("--gt", str(gt), "--results", str(results),
                benchmark="COCO", gate="TrackAP>=1") == 2  # fmt: skip


def test_gate_accepts_new_metric_names() -> None:
    metrics = {"TrackAP": 11.0, "TrackAP50": 15.8, "BoxAP": 17.2}
    assert check_gate(metrics, gate="TrackAP>=10,TrackAP50>15,BoxAP>=15") == []
    assert check_gate(metrics, baseline={"TrackAP": 12.0}, max_drop="TrackAP=0.5") == [
        "TrackAP = 11 below baseline 12 - 0.5 = 11.5"
    ]


# ----------------------------------------------------------------------------- bad input


def _drop(key: str) -> Callable[[dict], None]:
    return lambda record: record.pop(key)


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda record: record.__setitem__(key, value)


@pytest.mark.parametrize(
    ("edit_record", "match"),
    [
        (_drop("score"), "record 0: missing field.*'score'"),
        (_drop("track_id"), "missing field.*'track_id'"),
        (_set("image_id", 999), "image_id 999 is not an image of the gt"),
        (_set("category_id", 77), "category_id 77 is not a category"),
        (_set("bbox", [1, 2, 3]), "'bbox' must be"),
        (_set("bbox", [0, 0, -1, 5]), "negative width"),
        (_set("score", "high"), "'score' must be a finite number"),
        (_set("video_id", 2), "video_id 2 but image 101 is in 1"),
        (_set("track_id", 2), "track_id 2 appears twice in image 101"),
    ],
)
def test_bad_track_records(tmp_path: Path, edit_record: Callable[[dict], None], match: str) -> None:
    boxes = _track(1, 1, PERSON, BOX) + _track(1, 2, PERSON, FAR)
    tracks = _tracks(boxes)
    edit_record(tracks[0])
    with pytest.raises(ValueError, match=match):
        evaluate_tao(*_case(tmp_path, _gt_doc(boxes), tracks))


def _bad_gt(edit: Callable[[dict], None]) -> dict:
    gt = _gt_doc(_track(1, 1, PERSON, BOX))
    edit(gt)
    return gt


@pytest.mark.parametrize(
    ("gt", "match"),
    [
        (_bad_gt(lambda g: g.pop("videos")), "missing list 'videos'"),
        (_bad_gt(lambda g: g["images"][0].pop("frame_index")), "images.0.: missing.*frame_ind"),
        (_bad_gt(lambda g: g["images"][0].update(video_id=9)), "video_id 9 is not in 'videos'"),
        (_bad_gt(lambda g: g["annotations"].clear()), "no annotations"),
        (_bad_gt(lambda g: g["annotations"][0].update(image_id=5)), "image_id 5 is not in"),
        (_bad_gt(lambda g: g["categories"][1].update(name="person")), "names used twice"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_gt(tmp_path: Path, gt: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_tao(*_case(tmp_path, gt, []))


def test_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, results = _case(tmp_path, _gt_doc(_track(1, 1, PERSON, BOX)), [])
    with pytest.raises(FileNotFoundError, match=r"tracks\.json"):
        evaluate_tao(gt, tmp_path)
    (results / "tracks.json").write_text("[{")
    with pytest.raises(ValueError, match="invalid JSON"):
        evaluate_tao(gt, results)
    (results / "tracks.json").write_text('{"image_id": 101}')
    with pytest.raises(ValueError, match="expected a JSON list"):
        evaluate_tao(gt, results)
    _write(gt.parent / "other.json", {})
    with pytest.raises(ValueError, match=r"exactly one \.json"):
        evaluate_tao(gt.parent, results)
    with pytest.raises(ValueError, match=r"record 0: missing field.*'category_id'"):
        evaluate_box_ap(gt, [{"image_id": 101, "bbox": BOX, "score": 1}])
    # Through the CLI: exit 2 and one clean line, no traceback.
    assert _tao("--gt", str(gt.parent), "--results", str(results)) == 2
    err = capsys.readouterr().err
    assert err.startswith("qdtrack evaluate: error:") and "Traceback" not in err
