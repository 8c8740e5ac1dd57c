"""The multi-class (TAO) path on the embedded data: train, track, Track AP and box AP.

    python benchmarks/bench_tao_synth.py [--config configs/cpu_tao_synth.yaml]
        [--work runs/bench_tao_synth] [--set KEY=VALUE ...]

Generates the multi-class synthetic data (``qdtrack data synth --classes 3``: people, cars,
dogs; TAO videos + LVIS stills) into ``data/synth_tao``, trains the CPU TAO configuration
on both sources at once, tracks the val videos with ``QuasiDenseTAOTracker`` and scores
them with TrackEval's TAO TrackMAP and pycocotools box AP, beside the IoU tracker on the
same detections. Prints a table and writes ``benchmarks/results/tao_synth.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _quality import machine, timed_training, write_report

from qdtrack.checkpoint import model_from_checkpoint
from qdtrack.config import load_config
from qdtrack.data.prepare import convert_dataset
from qdtrack.data.synth import SynthConfig, generate
from qdtrack.evaluation.tao import evaluate_tao
from qdtrack.inference.validation import track_tao_set
from qdtrack.io_utils import read_json

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("TrackAP", "TrackAP50", "TrackAP75", "BoxAP", "BoxAP50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "cpu_tao_synth.yaml"))
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_tao_synth"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tao_synth.json"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    os.chdir(REPO)
    work = Path(args.work)
    data = Path("data") / "synth_tao"
    sources = (
        f"train.sources=[{{kind: tao, path: {data}/annotations/train.json, images: {data}}}, "
        f"{{kind: lvis, path: {data}/lvis/annotations.json, images: {data}/lvis/images}}]"
    )
    config = load_config(args.config, [sources, *args.set])
    settings = config.data
    if not (data / "manifest.json").is_file():
        synth = SynthConfig(
            train_seqs=settings.train_seqs,
            val_seqs=settings.val_seqs,
            frames=settings.frames,
            crowdhuman_images=settings.crowdhuman_images,
            num_classes=settings.classes,
        )
        generate(data, synth, seed=settings.seed)
    convert_dataset(
        data,
        work / "converted",
        val_split="full",
        train_sources=config.train.sources,
        settings=settings,
        class_names=config.model.class_names(),
    )
    checkpoint, train_seconds = timed_training(config, work / "train")
    model, trained = model_from_checkpoint(checkpoint)
    began = time.perf_counter()
    speed = track_tao_set(
        model,
        trained.tracker,
        read_json(work / "converted" / "val.json"),
        work / "track",
        class_names=trained.model.class_names(),
    )
    track_seconds = time.perf_counter() - began
    gt = work / "converted" / "val_gt"
    metrics = {
        "qdtrack": evaluate_tao(gt, work / "track" / "results")["combined"],
        "iou": evaluate_tao(gt, work / "track" / "iou_results")["combined"],
    }
    frames = sum(v["frames"] for v in speed.values())
    fps = frames / track_seconds
    print(f"training: {train_seconds / 60:.1f} min; tracking: {fps:.1f} frames/s")
    print(f"{'tracker':<30}" + "".join(f"{c:>11}" for c in COLUMNS))
    for label, key in (("QDTrack (TAO tracker)", "qdtrack"), ("IoU tracker, same dets", "iou")):
        row = metrics[key]
        print(f"{label:<30}" + "".join(_cell(row.get(c)) for c in COLUMNS))
    write_report(
        Path(args.out),
        {
            "config": os.path.relpath(args.config, REPO),
            "train_seconds": round(train_seconds, 1),
            "track_fps": round(fps, 2),
            "metrics": metrics,
            "machine": machine(),
        },
    )


def _cell(value: object) -> str:
    return f"{value:>11.2f}" if isinstance(value, float) else f"{'-':>11}"


if __name__ == "__main__":
    main()
