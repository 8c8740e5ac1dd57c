"""Writing the synthetic dataset: MOT17 sequences, stills, manifest and README.

With one class (people only) the stills are CrowdHuman-style; with more classes the
sequences also get TAO annotation files (``annotations/{train,val}.json``) and the stills
are LVIS-style (``lvis/``) instead. Every sequence and still image draws from its own
random stream keyed by (seed, purpose, index), so adding sequences changes no other file.
Same seed and config -> byte-identical files.
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
from qdtrack.data.synth.coco import (
    MIN_VISIBLE,
    JsonDict,
    LvisStill,
    TaoVideo,
    count_by_category,
    lvis_json,
    tao_json,
)
from qdtrack.data.synth.config import (
    ClassCount,
    SequenceSummary,
    SynthConfig,
    SynthSummary,
    config_from_args,
)
from qdtrack.data.synth.labels import (
    SequenceLabels,
    label_scene,
    label_sequence,
    make_detections,
    rounded_tlwh,
)
from qdtrack.data.synth.render import make_background, render_frame
from qdtrack.data.synth.scene import CATEGORY_NAMES, BoxXyxy, SequenceSim
from qdtrack.data.synth.simulate import simulate_sequence, simulate_still
from qdtrack.io_utils import atomic_write, write_json

FORMAT_VERSION = 1
# Purposes of the random streams (second key of ``_rng``).
_STREAM_SEQUENCE = 1
_STREAM_DETECTIONS = 2
_STREAM_CROWDHUMAN = 3
_STREAM_LVIS = 4

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

_README_MULTICLASS = """\
Synthetic multi-class tracking data written by
`qdtrack data synth --seed {seed} --classes {num_classes}` (format {version}).
Deterministic: the same seed and sizes give byte-identical files.
Classes (category id: name): {classes}.

train/<SEQ>/ and val/<SEQ>/   MOTChallenge (MOT17) sequences: {frames} frames each,
                              {width}x{height} pixels, {fps} fps
  img1/000001.jpg ...         frames (JPEG)
  gt/gt.txt                   frame,id,left,top,width,height,flag=1,class,visibility
                              class = category id (1 = person as in MOT17); visibility =
                              fraction of the object not hidden by objects or the pole in
                              front of it; boxes are full-object and may extend outside
                              the image
  det/det.txt                 class-agnostic public detections derived from gt:
                              frame,-1,left,top,width,height,score,-1,-1,-1
  seqinfo.ini                 MOTChallenge sequence info
annotations/train.json        TAO-format annotations of the train (val) sequences: videos,
annotations/val.json          images (every frame; file_name relative to this folder,
                              frame_index 0-based), tracks, annotations, categories.
                              A box is the full-object box clipped to the image, kept when
                              at least {min_visible:.0%} of the object's silhouette is visible
                              inside the image; track ids are unique across videos
lvis/images/<ID>.jpg          {stills} still images with objects of every class
lvis/annotations.json         LVIS-format annotations of the stills (same box rule)
manifest.json                 seed, sizes, per-sequence and per-file counts per class;
                              "lookalike_pairs" lists gt ids of same-class, same-shape
                              objects whose paths cross (colours differ)
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


def _class_counts(labels: SequenceLabels, num_classes: int) -> tuple[ClassCount, ...]:
    """Tracks and gt boxes per class of one sequence."""
    gt = labels.gt
    counts = []
    for k, name in enumerate(CATEGORY_NAMES[:num_classes]):
        of_class = gt.classes == k + 1
        counts.append(
            ClassCount(k + 1, name, len(np.unique(gt.ids[of_class])), int(of_class.sum()))
        )
    return tuple(counts)


def _write_sequence(
    seq_dir: Path, split: str, seed: int, index: int, config: SynthConfig, bar: tqdm
) -> tuple[SequenceSummary, SequenceLabels]:
    """Write frames, gt, detections and seqinfo of one sequence."""
    sim = build_sequence(seed, index, config)
    background = sequence_background(sim, config)
    for frame, scene in enumerate(sim.frames, start=1):
        img = render_frame(scene, background, margin=config.jitter_px)
        _write_jpeg(seq_dir / "img1" / f"{frame:06d}.jpg", img, config.jpeg_quality)
        bar.update(1)
    labels = label_sequence(sim, config.width, config.height)
    gt, pairs = labels.gt, labels.lookalike_pairs
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
    per_class = _class_counts(labels, config.num_classes) if config.num_classes > 1 else ()
    summary = SequenceSummary(
        split,
        seq_dir.name,
        config.frames,
        len(gt),
        len(np.unique(gt.ids)),
        len(det),
        pairs,
        per_class,
    )
    return summary, labels


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
        head = label.head_xyxy
        boxes.append(
            CrowdHumanBox(
                tag="person",
                fbox_xyxy=(x, y, x + w, y + h),
                vbox_xyxy=(vx0, vy0, vx1, vy1),
                hbox_xyxy=_round_box(head) if head is not None else None,
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


def _write_lvis(out: Path, seed: int, config: SynthConfig, bar: tqdm) -> JsonDict:
    """Write the LVIS-style still images and their annotation file; return the JSON."""
    stills = []
    for index in range(config.crowdhuman_images):
        rng = _rng(seed, _STREAM_LVIS, index)
        scene = simulate_still(rng, config)
        img = render_frame(scene, make_background(rng, config.width, config.height))
        image_id = index + 1
        file_name = f"{image_id:012d}.jpg"  # COCO-style name
        _write_jpeg(out / "images" / file_name, img, config.jpeg_quality)
        labels = tuple(label_scene(scene, config.width, config.height))
        stills.append(LvisStill(image_id, file_name, labels))
        bar.update(1)
    lvis = lvis_json(stills, config.num_classes, config.width, config.height)
    write_json(out / "annotations.json", lvis, indent=None)
    return lvis


def _write_tao(
    out: Path, sequences: list[tuple[SequenceSummary, SequenceLabels]], config: SynthConfig
) -> dict[str, JsonDict]:
    """Write ``annotations/{train,val}.json``; return their counts for the manifest."""
    counts: dict[str, JsonDict] = {}
    for split in ("train", "val"):
        videos = [
            TaoVideo(s.name, f"{split}/{s.name}/img1", s.frames, config.width, config.height, lab)
            for s, lab in sequences
            if s.split == split
        ]
        tao = tao_json(videos, config.num_classes)
        write_json(out / f"{split}.json", tao, indent=None)
        counts[split] = {
            "file": f"annotations/{split}.json",
            "videos": len(tao["videos"]),
            "images": len(tao["images"]),
            "tracks": len(tao["tracks"]),
            "annotations": len(tao["annotations"]),
            "tracks_per_class": count_by_category(tao["tracks"], config.num_classes),
            "annotations_per_class": count_by_category(tao["annotations"], config.num_classes),
        }
    return counts


def _sequence_entry(sequence: SequenceSummary) -> dict[str, object]:
    """A sequence's manifest entry (``per_class`` only in the multi-class mode)."""
    entry = {
        **asdict(sequence),
        "lookalike_pairs": [list(p) for p in sequence.lookalike_pairs],
    }
    del entry["per_class"]
    if sequence.per_class:
        entry["per_class"] = {
            c.name: {"category_id": c.category_id, "tracks": c.tracks, "gt_boxes": c.boxes}
            for c in sequence.per_class
        }
    return entry


def _write_readme(out: Path, summary: SynthSummary) -> None:
    """Write ``README.txt`` describing the files of the summary's mode."""
    config = summary.config
    fields = {
        "seed": summary.seed,
        "version": FORMAT_VERSION,
        "frames": config.frames,
        "width": config.width,
        "height": config.height,
        "fps": config.frame_rate,
    }
    if config.num_classes == 1:
        text = _README.format(**fields, crowd=config.crowdhuman_images)
    else:
        names = CATEGORY_NAMES[: config.num_classes]
        text = _README_MULTICLASS.format(
            **fields,
            num_classes=config.num_classes,
            classes=", ".join(f"{k + 1}: {name}" for k, name in enumerate(names)),
            min_visible=MIN_VISIBLE,
            stills=config.crowdhuman_images,
        )
    with atomic_write(out / "README.txt") as handle:
        handle.write(text)


def _write_manifest(out: Path, summary: SynthSummary, stills: JsonDict) -> None:
    """Write ``manifest.json``: seed, config, sequences, then the stills' section."""
    config = asdict(summary.config)
    if summary.config.num_classes == 1:
        del config["num_classes"]  # single-class manifests stay byte-identical to format 1
    manifest = {
        "format_version": FORMAT_VERSION,
        "seed": summary.seed,
        "config": config,
        "sequences": [_sequence_entry(s) for s in summary.sequences],
        **stills,
    }
    write_json(out / "manifest.json", manifest)


_Written = tuple[JsonDict, dict[str, int]]  # (manifest section, SynthSummary counts)


def _write_people_stills(out: Path, seed: int, config: SynthConfig, bar: tqdm) -> _Written:
    """Single-class mode: the CrowdHuman stills."""
    images = _write_crowdhuman(out / "crowdhuman", seed, config, bar)
    counts = {
        "crowdhuman_images": len(images),
        "crowdhuman_persons": sum(b.tag == "person" for i in images for b in i.boxes),
        "crowdhuman_masks": sum(b.tag == "mask" for i in images for b in i.boxes),
    }
    section = {
        "images": counts["crowdhuman_images"],
        "persons": counts["crowdhuman_persons"],
        "masks": counts["crowdhuman_masks"],
    }
    return {"crowdhuman": section}, counts


def _write_multiclass_files(
    out: Path,
    seed: int,
    sequences: list[tuple[SequenceSummary, SequenceLabels]],
    config: SynthConfig,
    bar: tqdm,
) -> _Written:
    """Multi-class mode: TAO annotations of the sequences and the LVIS stills."""
    tao = _write_tao(out / "annotations", sequences, config)
    lvis = _write_lvis(out / "lvis", seed, config, bar)
    lvis_images, lvis_annotations = lvis["images"], lvis["annotations"]
    section = {
        "categories": [
            {"id": k + 1, "name": name}
            for k, name in enumerate(CATEGORY_NAMES[: config.num_classes])
        ],
        "tao": tao,
        "lvis": {
            "file": "lvis/annotations.json",
            "images": len(lvis_images),
            "annotations": len(lvis_annotations),
            "annotations_per_class": count_by_category(lvis_annotations, config.num_classes),
        },
    }
    tao_annotations = sum(int(split["annotations"]) for split in tao.values())
    counts = {
        "crowdhuman_images": 0,
        "crowdhuman_persons": 0,
        "crowdhuman_masks": 0,
        "tao_annotations": tao_annotations,
        "lvis_images": len(lvis_images),
        "lvis_annotations": len(lvis_annotations),
    }
    return section, counts


def generate(
    out_dir: str | Path, config: SynthConfig | None = None, seed: int = 0, *, progress: bool = False
) -> SynthSummary:
    """Write the whole synthetic dataset under ``out_dir``.

    Args:
        out_dir: output folder (created; existing files with the same names are replaced).
        config: sizes and classes; ``None`` -> :class:`SynthConfig` defaults (people only).
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
        if config.num_classes == 1:
            section, counts = _write_people_stills(out, seed, config, bar)
        else:
            section, counts = _write_multiclass_files(out, seed, sequences, config, bar)
    summary = SynthSummary(
        out_dir=str(out),
        seed=seed,
        sequences=tuple(s for s, _ in sequences),
        config=config,
        **counts,
    )
    _write_readme(out, summary)
    _write_manifest(out, summary, section)
    return summary


def main(args: argparse.Namespace) -> int:
    """``qdtrack data synth``: write the dataset and print one summary line."""
    summary = generate(args.out, config_from_args(args), int(args.seed), progress=True)
    config = summary.config
    counts = f"{summary.frames} frames, {summary.gt_boxes} gt boxes, {summary.ids} ids"
    if config.num_classes == 1:
        written = (
            f"{len(summary.sequences)} sequences ({counts}) and {summary.crowdhuman_images} "
            f"CrowdHuman images ({summary.crowdhuman_persons} persons)"
        )
    else:
        classes = ", ".join(CATEGORY_NAMES[: config.num_classes])
        written = (
            f"{len(summary.sequences)} sequences ({counts}; classes {classes}), "
            f"{summary.tao_annotations} TAO annotations and {summary.lvis_images} LVIS "
            f"images ({summary.lvis_annotations} objects)"
        )
    sys.stdout.write(f"synth: wrote {written} to {summary.out_dir}\n")
    return 0


__all__ = ["FORMAT_VERSION", "build_sequence", "generate", "main", "sequence_background"]
