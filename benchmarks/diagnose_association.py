"""Where a tracking run loses HOTA: detection or association.

    python benchmarks/diagnose_association.py [--gt data/converted/val_gt]
        [--run runs/track] [--score-thr 0.5]

Reads the detections ``qdtrack track-val`` saved (``RUN/detections/<seq>.json``, with
embeddings) and the ground truth, and reports:

* **oracle association**: every detection scoring at least ``--score-thr`` takes the id of
  the gt box it overlaps most (Hungarian, IoU >= 0.5), so association is perfect and
  only the detector's misses, false positives and localisation remain: the HOTA ceiling of
  these detections;
* **nearest-neighbour accuracy** of the embeddings and of box IoU: for each gt-matched
  detection, is its most similar gt-matched detection ``gap`` frames earlier the same
  object? (gaps 1 and 5);
* the run's own QDTrack and IoU-tracker results (``RUN/results``, ``RUN/iou_results``);
* **why QDTrack loses a track**: the tracker (``--config``'s ``tracker`` settings) is replayed
  on the saved detections; for every detection above ``obj_score_thr`` that overlaps a gt
  object whose track is still remembered, the similarities the tracker is about to use say
  whether its own track is the best column and clears ``match_score_thr`` (kept), is the
  best but too weak, or loses to another track or to a backdrop. The raw embedding dot
  products with the own track and the most similar other track show how sharp the bi-softmax is.

Prints a table and writes ``benchmarks/results/association_diagnosis.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _quality import machine, write_report

from qdtrack.config import QDTrackConfig, load_config
from qdtrack.data.mot import load_sequence
from qdtrack.evaluation.mot import evaluate_mot
from qdtrack.evaluation.report import summary_metrics
from qdtrack.structures import Detections, box_iou
from qdtrack.trackers import QuasiDenseTracker, QuasiDenseTrackerSettings

REPO = Path(__file__).resolve().parents[1]
MATCH_IOU = 0.5


def _matched(run: Path, gt_dir: Path, seq: str, start: int, score_thr: float) -> list[tuple]:
    """Per frame: (MOT frame, boxes, embeddings, gt ids) of the gt-matched detections."""
    gt = load_sequence(gt_dir / seq).gt
    assert gt is not None
    frames = json.loads((run / "detections" / f"{seq}.json").read_text())["frames"]
    out = []
    for record in frames:
        number = record["frame_id"] + start
        scores = np.asarray(record["scores"], np.float32)
        keep = scores >= score_thr
        boxes = np.asarray(record["bboxes"], np.float32).reshape(-1, 4)[keep]
        embeds = np.asarray(record["embeds"], np.float32).reshape(len(scores), -1)[keep]
        rows = gt.frames == number
        ids = -np.ones(len(boxes), np.int64)
        if len(boxes) and rows.any():
            iou = box_iou(boxes, gt.boxes_xyxy[rows])
            for i, j in zip(*linear_sum_assignment(-iou), strict=True):
                if iou[i, j] >= MATCH_IOU:
                    ids[i] = gt.ids[rows][j]
        hit = ids >= 0
        out.append((number, boxes[hit], embeds[hit], ids[hit]))
    return out


def _nn_accuracy(frames: list[tuple], gap: int) -> tuple[float, float, int]:
    """Nearest-neighbour accuracy of (embeddings, box IoU) across ``gap`` frames."""
    hits_embed = hits_iou = total = 0
    for (_, b0, e0, l0), (_, b1, e1, l1) in zip(frames, frames[gap:], strict=False):
        if not len(l0) or not len(l1):
            continue
        n0 = e0 / np.maximum(np.linalg.norm(e0, axis=1, keepdims=True), 1e-12)
        n1 = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-12)
        similar, overlap = n1 @ n0.T, box_iou(b1, b0)
        for i, ident in enumerate(l1):
            if ident in l0:
                total += 1
                hits_embed += int(l0[similar[i].argmax()] == ident)
                hits_iou += int(l0[overlap[i].argmax()] == ident)
    return hits_embed / max(total, 1), hits_iou / max(total, 1), total


FAILURE_KINDS = ("kept", "own best, too weak", "another track better", "backdrop better")


def _gt_index(boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Row of the gt box each detection overlaps at IoU >= 0.5 (Hungarian), else -1."""
    index = -np.ones(len(boxes), np.int64)
    if len(boxes) and len(gt_boxes):
        iou = box_iou(boxes, gt_boxes)
        for i, j in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[i, j] >= MATCH_IOU:
                index[i] = j
    return index


def _failures(
    run: Path, gt_dir: Path, seq: str, start: int, settings: QuasiDenseTrackerSettings
) -> tuple[dict[str, int], list[float], list[float]]:
    """Replay QDTrack on a sequence's saved detections and classify each continuation.

    Returns the counts per :data:`FAILURE_KINDS` and, for the non-kept cases, the raw dot
    product of the detection with its own track's embedding and with the most similar other track.
    """
    gt = load_sequence(gt_dir / seq).gt
    assert gt is not None
    tracker = QuasiDenseTracker(settings)
    counts = dict.fromkeys(FAILURE_KINDS, 0)
    own_dots: list[float] = []
    rival_dots: list[float] = []
    last_track: dict[int, int] = {}  # gt id -> track id it last had
    frames = json.loads((run / "detections" / f"{seq}.json").read_text())["frames"]
    for record in frames:
        scores = np.asarray(record["scores"], np.float32)
        dets = Detections(
            np.asarray(record["bboxes"], np.float32).reshape(-1, 4),
            scores,
            np.asarray(record["labels"], np.int64),
            np.asarray(record["embeds"], np.float32).reshape(len(scores), -1),
        )
        rows = gt.frames == record["frame_id"] + start
        gt_boxes, gt_ids = gt.boxes_xyxy[rows], gt.ids[rows]
        if len(dets) and not tracker.empty:
            assert dets.embeddings is not None
            sims, memo_ids = tracker.match_scores(dets.embeddings, dets.labels)
            memo = np.stack([t.embedding for t in tracker.tracklets.values()])
            order = list(tracker.tracklets)
            for i, j in enumerate(_gt_index(dets.boxes_xyxy, gt_boxes)):
                if j < 0 or scores[i] <= tracker.obj_score_thr:
                    continue
                own_id = last_track.get(int(gt_ids[j]))
                if own_id is None or own_id not in order:
                    continue
                own = order.index(own_id)  # tracklet columns come first, in id order
                best = int(sims[i].argmax())
                if best == own:
                    kind = "kept" if sims[i, own] > tracker.match_score_thr else FAILURE_KINDS[1]
                else:
                    kind = FAILURE_KINDS[2] if memo_ids[best] >= 0 else FAILURE_KINDS[3]
                counts[kind] += 1
                if kind != "kept":
                    dots = memo @ dets.embeddings[i]
                    own_dots.append(float(dots[own]))
                    rival_dots.append(float(np.delete(dots, own).max(initial=-np.inf)))
        tracks = tracker.update(dets, record["frame_id"])
        for k, j in enumerate(_gt_index(tracks.boxes_xyxy, gt_boxes)):
            if j >= 0:
                last_track[int(gt_ids[j])] = int(tracks.track_ids[k])
    return counts, own_dots, rival_dots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", default=str(REPO / "data" / "converted" / "val_gt"))
    parser.add_argument(
        "--manifest",
        default=str(REPO / "data" / "converted" / "val.json"),
        help="val.json of qdtrack data convert (first tracked frame of each sequence)",
    )
    parser.add_argument("--run", default=str(REPO / "runs" / "track"))
    parser.add_argument("--score-thr", type=float, default=0.5)
    parser.add_argument("--benchmark", default="MOT17")
    parser.add_argument(
        "--config", default=str(REPO / "params.yaml"), help="params file: its tracker settings"
    )
    parser.add_argument(
        "--out", default=str(REPO / "benchmarks" / "results" / "association_diagnosis.json")
    )
    args = parser.parse_args()
    gt_dir, run = Path(args.gt), Path(args.run)
    manifest = json.loads(Path(args.manifest).read_text())
    starts = {str(s["name"]): int(s["start"]) for s in manifest.get("sequences", [])}
    split = str(manifest.get("split", "full"))
    seqs = sorted(p.stem for p in (run / "detections").glob("*.json"))
    if not seqs:
        raise SystemExit(f"{run / 'detections'}: no saved detections (run qdtrack track-val)")
    matched = {seq: _matched(run, gt_dir, seq, starts.get(seq, 1), args.score_thr) for seq in seqs}
    with tempfile.TemporaryDirectory() as tmp:
        for seq, frames in matched.items():
            lines = [
                f"{n},{i},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1"
                for n, boxes, _, ids in frames
                for (x1, y1, x2, y2), i in zip(boxes.tolist(), ids.tolist(), strict=True)
            ]
            (Path(tmp) / f"{seq}.txt").write_text("\n".join(lines) + "\n")
        rows = {
            "oracle association": evaluate_mot(
                gt_dir, Path(tmp), benchmark=args.benchmark, split=split
            )
        }
    for name, folder in (("QDTrack", "results"), ("IoU tracker", "iou_results")):
        if (run / folder).is_dir():
            rows[name] = evaluate_mot(gt_dir, run / folder, benchmark=args.benchmark, split=split)
    summary = {name: summary_metrics(metrics) for name, metrics in rows.items()}
    identities = {  # distinct predicted ids against distinct gt objects (TrackEval's counts)
        name: {k: int(metrics["combined"][k]) for k in ("IDs", "GT_IDs")}
        for name, metrics in rows.items()
    }
    columns = ("HOTA", "DetA", "AssA", "IDF1")
    print(f"{'same detections':<22}" + "".join(f"{c:>8}" for c in columns) + "  ids / gt ids")
    for name, values in summary.items():
        cells = "".join(f"{values[c]:>8.2f}" for c in columns)
        print(f"{name:<22}{cells}  {identities[name]['IDs']} / {identities[name]['GT_IDs']}")
    nearest = {}
    for gap in (1, 5):
        embed = iou = total = 0.0
        for frames in matched.values():
            e, i, n = _nn_accuracy(frames, gap)
            embed, iou, total = embed + e * n, iou + i * n, total + n
        nearest[f"gap_{gap}"] = {
            "embedding": round(embed / max(total, 1), 4),
            "box_iou": round(iou / max(total, 1), 4),
            "queries": int(total),
        }
        print(
            f"nearest neighbour, {gap} frame(s) apart: embedding {embed / max(total, 1):.3f}, "
            f"box IoU {iou / max(total, 1):.3f} ({int(total)} queries)"
        )
    config: QDTrackConfig = load_config(args.config)
    failures: dict[str, object] = {}
    if isinstance(config.tracker, QuasiDenseTrackerSettings):
        counts = dict.fromkeys(FAILURE_KINDS, 0)
        own_dots: list[float] = []
        rival_dots: list[float] = []
        for seq in seqs:
            c, own, rival = _failures(run, gt_dir, seq, starts.get(seq, 1), config.tracker)
            counts = {k: counts[k] + c[k] for k in FAILURE_KINDS}
            own_dots += own
            rival_dots += rival
        total = max(sum(counts.values()), 1)
        print("QDTrack continuations (detections of objects whose track is remembered):")
        for kind, n in counts.items():
            print(f"  {kind:<22}{n:>6}  ({100 * n / total:.1f} %)")
        failures = {"counts": counts}
        if own_dots:
            failures["median_dot_own"] = round(float(np.median(own_dots)), 2)
            failures["median_dot_rival"] = round(float(np.median(rival_dots)), 2)
            print(
                f"  when not kept: median dot product with own track "
                f"{failures['median_dot_own']}, with the strongest other track "
                f"{failures['median_dot_rival']}"
            )
    write_report(
        Path(args.out),
        {
            "score_thr": args.score_thr,
            "metrics": summary,
            "identities": identities,
            "nearest": nearest,
            "continuations": failures,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
