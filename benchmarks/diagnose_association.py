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
* the run's own QDTrack and IoU-tracker results (``RUN/results``, ``RUN/iou_results``).

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

from qdtrack.data.mot import load_sequence
from qdtrack.evaluate import evaluate_mot, summary_metrics
from qdtrack.structures import box_iou

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
    print(f"{'same detections':<22}" + "".join(f"{c:>8}" for c in ("HOTA", "DetA", "AssA", "IDF1")))
    for name, values in summary.items():
        cells = "".join(f"{values[c]:>8.2f}" for c in ("HOTA", "DetA", "AssA", "IDF1"))
        print(f"{name:<22}{cells}")
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
    write_report(
        Path(args.out),
        {"score_thr": args.score_thr, "metrics": summary, "nearest": nearest, "machine": machine()},
    )


if __name__ == "__main__":
    main()
