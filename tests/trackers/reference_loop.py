"""A deliberately plain, loop-by-loop transcription of reference d.2 used as a test oracle.

It keeps the memory as a dict in insertion order and does every step with Python loops,
so it shares no code with the vectorised tracker it checks.
"""

from __future__ import annotations

import math

import numpy as np


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1.1920929e-07)


class LoopTracker:
    def __init__(self, **cfg) -> None:
        self.cfg = {
            "init_score_thr": 0.9,
            "obj_score_thr": 0.5,
            "match_score_thr": 0.5,
            "memo_tracklet_frames": 30,
            "memo_backdrop_frames": 1,
            "memo_momentum": 0.8,
            "nms_conf_thr": 0.5,
            "nms_backdrop_iou_thr": 0.3,
            "nms_class_iou_thr": 0.7,
            "with_cats": True,
            **cfg,
        }
        self.tracks: dict[int, dict] = {}
        self.backdrops: list[dict] = []
        self.num_tracks = 0

    def track(self, boxes, scores, labels, embeds, frame_id):
        c = self.cfg
        n = len(scores)
        if n == 0:
            return [], []
        order = sorted(range(n), key=lambda i: -scores[i])
        valid = [True] * n
        for p in range(1, n):
            i = order[p]
            thr = (
                c["nms_backdrop_iou_thr"]
                if scores[i] < c["obj_score_thr"]
                else c["nms_class_iou_thr"]
            )
            if any(_iou(boxes[i], boxes[order[q]]) > thr for q in range(p)):
                valid[p] = False
        kept = [order[p] for p in range(n) if valid[p]]
        ids = [-1] * len(kept)
        if kept and self.tracks:
            memo = [(tid, t["embed"], t["label"]) for tid, t in self.tracks.items()]
            for b in self.backdrops:
                memo += [(-1, e, lab) for e, lab in zip(b["embeds"], b["labels"], strict=True)]
            dots = [[float(np.dot(embeds[i], m[1])) for m in memo] for i in kept]
            rows = [
                [math.exp(d - max(r)) / sum(math.exp(x - max(r)) for x in r) for d in r]
                for r in dots
            ]
            cols_t = list(zip(*dots, strict=True))
            cols = [
                [math.exp(d - max(col)) / sum(math.exp(x - max(col)) for x in col) for d in col]
                for col in cols_t
            ]
            sim = [
                [(rows[i][j] + cols[j][i]) / 2 for j in range(len(memo))] for i in range(len(kept))
            ]
            if c["with_cats"]:
                for i, k in enumerate(kept):
                    for j, m in enumerate(memo):
                        if labels[k] != m[2]:
                            sim[i][j] = 0.0
            for i, k in enumerate(kept):
                j = max(range(len(memo)), key=lambda col: (sim[i][col], -col))
                conf = sim[i][j]
                if conf > c["match_score_thr"] and memo[j][0] > -1:
                    if scores[k] > c["obj_score_thr"]:
                        ids[i] = memo[j][0]
                        for r in range(len(kept)):
                            if r != i:
                                sim[r][j] = 0.0
                    elif conf > c["nms_conf_thr"]:
                        ids[i] = -2
        for i, k in enumerate(kept):
            if ids[i] == -1 and scores[k] > c["init_score_thr"]:
                ids[i] = self.num_tracks
                self.num_tracks += 1
        for i, k in enumerate(kept):
            if ids[i] < 0:
                continue
            if ids[i] in self.tracks:
                t = self.tracks[ids[i]]
                t["embed"] = (1 - c["memo_momentum"]) * t["embed"] + c["memo_momentum"] * embeds[k]
                t["label"], t["last_frame"] = labels[k], frame_id
            else:
                self.tracks[ids[i]] = {
                    "embed": embeds[k].copy(),
                    "label": labels[k],
                    "last_frame": frame_id,
                }
        bd = []
        for p, k in enumerate(kept):
            if ids[p] == -1 and not any(
                _iou(boxes[k], boxes[kept[q]]) > c["nms_backdrop_iou_thr"] for q in range(p)
            ):
                bd.append(k)
        self.backdrops.insert(
            0, {"embeds": [embeds[k] for k in bd], "labels": [labels[k] for k in bd]}
        )
        for tid in [
            tid
            for tid, t in self.tracks.items()
            if frame_id - t["last_frame"] >= c["memo_tracklet_frames"]
        ]:
            del self.tracks[tid]
        if len(self.backdrops) > c["memo_backdrop_frames"]:
            self.backdrops.pop()
        return kept, ids
