"""Writing the synthetic dataset: MOT17 sequences, CrowdHuman stills, manifest and README.

Every sequence and still image draws from its own random stream keyed by (seed, purpose,
index), so adding sequences changes no other file. Same seed and config -> byte-identical
files.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from qdtrack.data.crowdhuman import CrowdHumanBox, CrowdHumanImage, write_odgt
from qdtrack.data.mot import SeqInfo, write_mot_txt, write_seqinfo
from qdtrack.data.synth.config import SequenceSummary, SynthConfig, SynthSummary, config_from_args
from qdtrack.data.synth.labels import label_scene, make_detections, rounded_tlwh, sequence_gt
from qdtrack.data.synth.render import make_background, render_frame
from qdtrack.data.synth.scene import BoxXyxy, SequenceSim
from qdtrack.data.synth.simulate import simulate_sequence, simulate_still
from qdtrack.io_utils import atomic_write, write_json

FORMAT_VERSION = 1
# Purposes of the random streams (second key of ``_rng``).
_STREAM_SEQUENCE = 1
_STREAM_DETECTIONS = 2
_STREAM_CROWDHUMAN = 3

_README = """\
Synthetic tracking data written by `qdtrack data synth --seed {seed}` (format {version}).
Deterministic: the same seed and sizes give byte-identical files.

train/<SEQ>/ and val/<SEQ>/   MOTChallenge (MOT17) sequences: {frames} frames each,
                              {width}x{height} pixels, {fps} fps
  img1/000001.jpg ...         frames (JPEG)
  gt/gt.txt                   frame,id,left,top,width,height,flag=1,class=1,visibility
                              visibility = fraction of the figure not hidden by figures or
                              the pole in front of it; boxes are full-body and may extend
                              outside the image
  det/det.txt                 public detections derived from gt (jitter, occlusion-driven
                              misses, false positives):
                              frame,-1,left,top,width,height,score,-1,-1,-1
  seqinfo.ini                 MOTChallenge sequence info
crowdhuman/Images/<ID>.jpg    {crowd} still images with several figures
crowdhuman/annotation_train.odgt  CrowdHuman odgt: fbox (full body), vbox (visible), hbox
                              (head); posters showing people are tag "mask" (extra.ignore=1)
manifest.json                 seed, sizes and per-sequence counts; "lookalike_pairs" lists
                              gt ids of same-shape figures whose paths cross (appearance differs)
"""


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, purpose, index): adding sequences changes no other."""
    return np.random.default_rng([seed, *keys])


def _write_jpeg(path: Path, img: np.ndarray, quality: int) -> None:
    """Encode ``img`` as JPEG and write it atomically."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"{path}: JPEG encoding failed")
    with atomic_write(path, "wb") as handle:
        handle.write(buf.tobytes())


def _round_box(box: BoxXyxy) -> BoxXyxy:
    """Box corners rounded to whole pixels (as floats)."""
    x0, y0, x1, y1 = box
    return (float(round(x0)), float(round(y0)), float(round(x1)), float(round(y1)))


def build_sequence(seed: int, index: int, config: SynthConfig) -> SequenceSim:
    """The simulation of sequence number ``index`` (1-based, train then val)."""
    return simulate_sequence(_rng(seed, _STREAM_SEQUENCE, index), config)


def sequence_background(sim: SequenceSim, config: SynthConfig) -> np.ndarray:
    """The background of ``sim``, with a ``config.jitter_px`` border for the camera shift."""
    margin = config.jitter_px
    return make_background(
        np.random.default_rng(sim.background_seed),
        config.width + 2 * margin,
        config.height + 2 * margin,
    )


def _write_sequence(
    seq_dir: Path, split: str, seed: int, index: int, config: SynthConfig, bar: tqdm
) -> SequenceSummary:
    """Write frames, gt, detections and seqinfo of one sequence."""
    sim = build_sequence(seed, index, config)
    background = sequence_background(sim, config)
    for frame, scene in enumerate(sim.frames, start=1):
        img = render_frame(scene, background, margin=config.jitter_px)
        _write_jpeg(seq_dir / "img1" / f"{frame:06d}.jpg", img, config.jpeg_quality)
        bar.update(1)
    gt, pairs = sequence_gt(sim, config.width, config.height)
    det_rng = _rng(seed, _STREAM_DETECTIONS, index)
    det = make_detections(det_rng, gt, config.frames, config.width, config.height)
    write_mot_txt(seq_dir / "gt" / "gt.txt", gt, kind="gt")
    write_mot_txt(seq_dir / "det" / "det.txt", det, kind="det")
    info = SeqInfo(
        name=seq_dir.name,
        seq_length=config.frames,
        frame_rate=float(config.frame_rate),
        im_width=config.width,
        im_height=config.height,
    )
    write_seqinfo(seq_dir / "seqinfo.ini", info)
    return SequenceSummary(
        split, seq_dir.name, config.frames, len(gt), len(np.unique(gt.ids)), len(det), pairs
    )


def _crowdhuman_image(
    rng: np.random.Generator, index: int, config: SynthConfig
) -> tuple[CrowdHumanImage, np.ndarray]:
    """One still image and its odgt annotation (persons, plus posters as masks)."""
    scene = simulate_still(rng, config)
    img = render_frame(scene, make_background(rng, config.width, config.height))
    token = format(int(rng.integers(2**60)), "015x")
    boxes: list[CrowdHumanBox] = []
    for label in label_scene(scene, config.width, config.height):
        if label.visible_xyxy is None:
            continue  # nothing of it shows: cannot be annotated
        x, y, w, h = rounded_tlwh(label.box_xyxy)
        # Rasterised pixels can poke one pixel past the rounded full-body box.
        vx0, vy0 = max(label.visible_xyxy[0], x), max(label.visible_xyxy[1], y)
        vx1, vy1 = min(label.visible_xyxy[2], x + w), min(label.visible_xyxy[3], y + h)
        if vx1 - vx0 < 1 or vy1 - vy0 < 1:
            continue
        boxes.append(
            CrowdHumanBox(
                tag="person",
                fbox_xyxy=(x, y, x + w, y + h),
                vbox_xyxy=(vx0, vy0, vx1, vy1),
                hbox_xyxy=_round_box(label.head_xyxy),
                box_id=len(boxes),
                extra_attrs={"occ": int(label.visibility < 0.9)},
                head_attr={"ignore": 0, "occ": int(label.head_visibility < 0.5), "unsure": 0},
            )
        )
    for occluder in scene.occluders:
        if occluder.kind == "poster":
            box = _round_box(occluder.box_xyxy)
            boxes.append(CrowdHumanBox("mask", box, box, box, ignore=True))
    return CrowdHumanImage(f"{index + 1:06d},{token}", tuple(boxes)), img


def _write_crowdhuman(
    out: Path, seed: int, config: SynthConfig, bar: tqdm
) -> list[CrowdHumanImage]:
    """Write the CrowdHuman-style still images and their odgt file."""
    images = []
    for index in range(config.crowdhuman_images):
        image, img = _crowdhuman_image(_rng(seed, _STREAM_CROWDHUMAN, index), index, config)
        _write_jpeg(out / "Images" / f"{image.image_id}.jpg", img, config.jpeg_quality)
        images.append(image)
        bar.update(1)
    write_odgt(out / "annotation_train.odgt", images)
    return images


def _write_readme_and_manifest(out: Path, summary: SynthSummary) -> None:
    """Write ``README.txt`` and ``manifest.json`` describing what was written."""
    config = summary.config
    with atomic_write(out / "README.txt") as handle:
        handle.write(
            _README.format(
                seed=summary.seed,
                version=FORMAT_VERSION,
                frames=config.frames,
                width=config.width,
                height=config.height,
                fps=config.frame_rate,
                crowd=config.crowdhuman_images,
            )
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "seed": summary.seed,
        "config": asdict(config),
        "sequences": [
            {**asdict(s), "lookalike_pairs": [list(p) for p in s.lookalike_pairs]}
            for s in summary.sequences
        ],
        "crowdhuman": {
            "images": summary.crowdhuman_images,
            "persons": summary.crowdhuman_persons,
            "masks": summary.crowdhuman_masks,
        },
    }
    write_json(out / "manifest.json", manifest)


def generate(
    out_dir: str | Path, config: SynthConfig | None = None, seed: int = 0, *, progress: bool = False
) -> SynthSummary:
    """Write the whole synthetic dataset under ``out_dir``.

    Args:
        out_dir: output folder (created; existing files with the same names are replaced).
        config: sizes; ``None`` -> :class:`SynthConfig` defaults.
        seed: non-negative integer seed.
        progress: show a tqdm progress bar on stderr.

    Returns:
        Counts of what was written.
    """
    config = config or SynthConfig()
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out_dir)
    splits = ["train"] * config.train_seqs + ["val"] * config.val_seqs
    total = len(splits) * config.frames + config.crowdhuman_images
    sequences = []
    with tqdm(total=total, desc="synth", unit="img", file=sys.stderr, disable=not progress) as bar:
        for index, split in enumerate(splits, start=1):
            seq_dir = out / split / f"SYNTH-{index:02d}"
            sequences.append(_write_sequence(seq_dir, split, seed, index, config, bar))
        images = _write_crowdhuman(out / "crowdhuman", seed, config, bar)
    summary = SynthSummary(
        out_dir=str(out),
        seed=seed,
        sequences=tuple(sequences),
        crowdhuman_images=len(images),
        crowdhuman_persons=sum(b.tag == "person" for i in images for b in i.boxes),
        crowdhuman_masks=sum(b.tag == "mask" for i in images for b in i.boxes),
        config=config,
    )
    _write_readme_and_manifest(out, summary)
    return summary


def main(args: argparse.Namespace) -> int:
    """``qdtrack data synth``: write the dataset and print one summary line."""
    summary = generate(args.out, config_from_args(args), int(args.seed), progress=True)
    sys.stdout.write(
        f"synth: wrote {len(summary.sequences)} sequences ({summary.frames} frames, "
        f"{summary.gt_boxes} gt boxes, {summary.ids} ids) and {summary.crowdhuman_images} "
        f"CrowdHuman images ({summary.crowdhuman_persons} persons) to {summary.out_dir}\n"
    )
    return 0


__all__ = ["FORMAT_VERSION", "build_sequence", "generate", "main", "sequence_background"]
