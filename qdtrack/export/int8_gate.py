"""Quality gate of the INT8 export: track the validation sequences with both models.

The float32 and the INT8 graph each track every validation sequence (the tracker of the
export's configuration, frames sent exactly as a client sends them) and are scored with
TrackEval (:func:`qdtrack.evaluation.mot.evaluate_mot`) in the same run. The INT8 model is kept
only if its HOTA and IDF1 are at most ``export.max_hota_drop`` / ``export.max_idf1_drop``
points below the float model's.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qdtrack.config import QDTrackConfig
from qdtrack.evaluation.mot import BENCHMARKS, evaluate_mot
from qdtrack.export.quantize import calibration_images, quantize_int8
from qdtrack.export.runtime import OnnxDetector
from qdtrack.inference.loop import Predictor
from qdtrack.inference.validation import track_val_set


@dataclass(frozen=True)
class TrackingScores:
    """Combined scores over the validation sequences, in points (0-100)."""

    hota: float
    idf1: float


@dataclass(frozen=True)
class Int8GateReport:
    """Float vs INT8 on the validation sequences and the allowed drops."""

    float32: TrackingScores
    int8: TrackingScores
    max_hota_drop: float
    max_idf1_drop: float

    def failures(self) -> list[str]:
        """One line per metric that dropped more than allowed (empty: the gate passes)."""
        lines = []
        for name, old, new, allowed in (
            ("HOTA", self.float32.hota, self.int8.hota, self.max_hota_drop),
            ("IDF1", self.float32.idf1, self.int8.idf1, self.max_idf1_drop),
        ):
            if old - new > allowed:
                lines.append(
                    f"{name} {new:.2f} (INT8) vs {old:.2f} (float32): drop {old - new:.2f} "
                    f"> allowed {allowed:g}"
                )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``passed``."""
        return {**asdict(self), "passed": not self.failures()}


def check_manifest(manifest: dict[str, Any], config: QDTrackConfig) -> None:
    """Raise ``ValueError`` unless the validation set can be scored with HOTA and IDF1."""
    if manifest.get("format") == "tao" or config.evaluate.benchmark not in BENCHMARKS:
        raise ValueError(
            "the INT8 quality gate scores HOTA and IDF1 on MOTChallenge validation "
            f"sequences; evaluate.benchmark is {config.evaluate.benchmark}"
        )
    if not manifest.get("sequences"):
        raise ValueError("the validation manifest lists no sequences (run qdtrack data convert)")


def score_tracking(
    detector: Predictor,
    config: QDTrackConfig,
    manifest: dict[str, Any],
    gt_dir: str | Path,
) -> TrackingScores:
    """Track the manifest's sequences with ``detector`` and score them with TrackEval."""
    with tempfile.TemporaryDirectory(prefix="qdtrack-int8-gate-") as folder:
        track_val_set(detector, config.tracker, manifest, folder, render=False, iou_baseline=False)
        metrics = evaluate_mot(
            gt_dir,
            Path(folder) / "results",
            benchmark=config.evaluate.benchmark,
            split=config.data.val_split,
        )
    combined = metrics["combined"]
    return TrackingScores(hota=float(combined["HOTA"]), idf1=float(combined["IDF1"]))


def build_int8(
    float_path: Path,
    int8_path: Path,
    config: QDTrackConfig,
    *,
    img_scale: tuple[int, int],
    batched: bool,
    manifest: dict[str, Any],
    gt_dir: str | Path,
    parts: Path | None = None,
) -> Int8GateReport:
    """Quantise ``float_path`` into ``int8_path`` and score both (the caller enforces it).

    Calibration uses ``export.calibration_frames`` frames of ``train.sources``; ``parts``
    are the batched graph's traces (see :func:`~qdtrack.export.quantize.quantize_int8`).
    """
    check_manifest(manifest, config)
    frames = calibration_images(
        config.train.sources, config.model.class_names(), config.export.calibration_frames
    )
    quantize_int8(float_path, int8_path, frames, img_scale=img_scale, batched=batched, parts=parts)
    return run_gate(
        OnnxDetector(float_path, img_scale=img_scale),
        OnnxDetector(int8_path, img_scale=img_scale),
        config,
        manifest,
        gt_dir,
    )


def run_gate(
    float_detector: Predictor,
    int8_detector: Predictor,
    config: QDTrackConfig,
    manifest: dict[str, Any],
    gt_dir: str | Path,
) -> Int8GateReport:
    """Score both models on the validation sequences (same run, same tracker settings)."""
    check_manifest(manifest, config)
    return Int8GateReport(
        float32=score_tracking(float_detector, config, manifest, gt_dir),
        int8=score_tracking(int8_detector, config, manifest, gt_dir),
        max_hota_drop=config.export.max_hota_drop,
        max_idf1_drop=config.export.max_idf1_drop,
    )
