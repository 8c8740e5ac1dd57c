"""The pipeline's first two steps: get the dataset (``prepare``) and split it (``convert``).

``prepare`` produces ``<out>/train/<seq>/``, ``<out>/val/<seq>/`` (synthetic data only)
and ``<out>/crowdhuman/`` from one of two sources:

* ``synth``: the embedded default, generated deterministically (``qdtrack data synth``);
* ``path``: a MOTChallenge-layout dataset on disk (for example MOT17 pulled with
  ``dvc pull``), checked file by file and linked into ``<out>`` (hard links where the
  filesystem allows, copies otherwise), so a broken download fails here with the file
  named, not later inside training.

``convert`` writes what evaluation and tracking need from it: the validation ground
truth (the ``val/`` sequences, or mmtracking's half-val split of ``train/``), a
``val.json`` listing each validation sequence with its frame range, and ``stats.json``
with counts. It also loads every training source with the training readers, so malformed
annotations stop the pipeline before training starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2

from qdtrack.config import DataConfig, resolve_classes, stage_config
from qdtrack.data.crowdhuman import read_odgt, to_training_boxes
from qdtrack.data.mot import half_frames, list_sequences, load_sequence, write_half_split
from qdtrack.data.sources import load_source
from qdtrack.data.store import code_fingerprint, fingerprint, stored, tree_listing
from qdtrack.io_utils import read_json, write_json
from qdtrack.schema import to_plain

_IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


# --------------------------------------------------------------------------- checks


def _check_image(path: Path, decode: bool) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image missing")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ValueError(f"{path}: unreadable image ({exc.strerror})") from None
    if not any(head.startswith(magic) for magic in _IMAGE_MAGIC):
        raise ValueError(f"{path}: not a JPEG or PNG file (corrupt or truncated download?)")
    if decode and cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
        raise ValueError(f"{path}: image does not decode")


def check_mot_folder(root: Path) -> list[dict[str, Any]]:
    """Validate every sequence under ``root``; per-sequence counts.

    Every image must exist and start like a JPEG/PNG; the first and last frames are
    decoded; ``seqinfo.ini`` and ``gt/gt.txt`` must parse.
    """
    stats = []
    for seq_dir in list_sequences(root):
        seq = load_sequence(seq_dir)
        if seq.gt is None:
            raise FileNotFoundError(f"{seq_dir / 'gt' / 'gt.txt'}: no such file")
        paths = seq.image_paths()
        for index, path in enumerate(paths):
            _check_image(path, decode=index in (0, len(paths) - 1))
        stats.append(
            {
                "name": seq_dir.name,
                "frames": seq.info.seq_length,
                "gt_rows": len(seq.gt.frames),
                "ids": len(set(seq.gt.ids.tolist())),
            }
        )
    return stats


def check_crowdhuman_folder(folder: Path) -> dict[str, int]:
    """Validate ``annotation_train.odgt`` and the images it lists."""
    odgt = folder / "annotation_train.odgt"
    images = read_odgt(odgt)
    boxes = 0
    for index, image in enumerate(images):
        _check_image(folder / "Images" / f"{image.image_id}.jpg", decode=index == 0)
        boxes += len(to_training_boxes(image)[0])
    return {"images": len(images), "person_boxes": boxes}


# --------------------------------------------------------------------------- prepare


def _link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with hard links (copies across filesystems)."""

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(src, dst, copy_function=link)


def prepare_dataset(settings: DataConfig, out: str | Path) -> dict[str, Any]:
    """Write the dataset to ``out`` (replacing it) and return its manifest."""
    out_dir = Path(out)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if settings.source == "synth":
        from qdtrack.data.synth import SynthConfig, generate

        config = SynthConfig(
            train_seqs=settings.train_seqs,
            val_seqs=settings.val_seqs,
            frames=settings.frames,
            crowdhuman_images=settings.crowdhuman_images,
            num_classes=settings.classes,
        )
        generate(out_dir, config, settings.seed, progress=True)
        synth_manifest: dict[str, Any] = read_json(out_dir / "manifest.json")
        return {**synth_manifest, "source": "synth"}

    root = Path(settings.path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.path {root}: no such folder (put MOT17 there, or `dvc pull` it; "
            "see datasets/README.md)"
        )
    if settings.format == "tao":
        return _prepare_tao(root, out_dir, settings)
    manifest: dict[str, Any] = {"source": "path", "path": str(root)}
    for split in ("train", "val"):
        if (root / split).is_dir():
            manifest[split] = check_mot_folder(root / split)
    if "train" not in manifest:
        raise FileNotFoundError(f"{root / 'train'}: no such folder (MOTChallenge layout expected)")
    if (root / "crowdhuman").is_dir():
        manifest["crowdhuman"] = check_crowdhuman_folder(root / "crowdhuman")
    out_dir.mkdir(parents=True)
    for name in ("train", "val", "crowdhuman"):
        if (root / name).is_dir():
            _link_tree(root / name, out_dir / name)
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def check_tao_file(annotations: Path, images: Path) -> dict[str, int]:
    """Parse a TAO annotation file and check every image it lists (first and last decoded)."""
    from qdtrack.data.tao import read_tao

    dataset = read_tao(annotations)
    for index, image in enumerate(dataset.images):
        _check_image(images / image.file_name, decode=index in (0, len(dataset.images) - 1))
    return {
        "videos": len(dataset.videos),
        "images": len(dataset.images),
        "annotations": len(dataset.annotations),
        "tracks": len(dataset.tracks),
        "categories": len(dataset.categories),
    }


def _prepare_tao(root: Path, out_dir: Path, settings: DataConfig) -> dict[str, Any]:
    """A TAO-style dataset on disk: check the validation file and its images, link it all."""
    annotations = root / settings.val_annotations
    if not annotations.is_file():
        raise FileNotFoundError(
            f"{annotations}: no such file (data.val_annotations, relative to data.path)"
        )
    manifest = {
        "source": "path",
        "path": str(root),
        "format": "tao",
        "val": check_tao_file(annotations, root / settings.images),
    }
    _link_tree(root, out_dir)
    write_json(out_dir / "manifest.json", manifest)
    return manifest


# --------------------------------------------------------------------------- convert


def _val_sequences(dataset: Path, val_split: str) -> Iterable[Path]:
    folder = dataset / ("val" if val_split == "full" else "train")
    return list_sequences(folder)


def _convert_tao_val(data_dir: Path, out_dir: Path, settings: DataConfig) -> int:
    """``val_gt/<file>.json`` (a copy: TrackEval wants one json in the folder) and a
    ``val.json`` listing each video's annotated frames in order; returns the video count."""
    from qdtrack.data.tao import read_tao

    annotations = data_dir / settings.val_annotations
    dataset = read_tao(annotations)
    (out_dir / "val_gt").mkdir(parents=True)
    shutil.copy2(annotations, out_dir / "val_gt" / annotations.name)
    images = data_dir / settings.images
    videos = [
        {
            "id": video.id,
            "name": video.name,
            "frames": [
                {
                    "image_id": image.id,
                    "frame_index": image.frame_index,
                    "path": str(images / image.file_name),
                }
                for image in dataset.frames_of(video.id)
            ],
        }
        for video in dataset.videos
    ]
    videos = [v for v in videos if v["frames"]]
    categories = [{"id": c.id, "name": c.name} for c in dataset.categories]
    write_json(
        out_dir / "val.json",
        {"format": "tao", "split": "full", "categories": categories, "videos": videos},
    )
    return len(videos)


def convert_dataset(
    dataset: str | Path,
    out: str | Path,
    *,
    val_split: str,
    train_sources: Iterable[Any],
    settings: DataConfig | None = None,
    class_names: Sequence[str] = ("pedestrian",),
) -> dict[str, Any]:
    """Write ``out/val_gt/``, ``out/val.json`` and ``out/stats.json``; return the stats.

    With ``settings.format == "tao"`` the validation set is the TAO annotation file
    ``settings.val_annotations`` instead of MOTChallenge sequences.
    """
    data_dir, out_dir = Path(dataset), Path(out)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if settings is not None and settings.format == "tao":
        out_dir.mkdir(parents=True)
        count = _convert_tao_val(data_dir, out_dir, settings)
        return _write_stats(out_dir, "full", count, train_sources, class_names)
    gt_root = out_dir / "val_gt"
    val_entries = []
    for seq_dir in _val_sequences(data_dir, val_split):
        seq = load_sequence(seq_dir)
        target = gt_root / seq_dir.name
        (target / "gt").mkdir(parents=True)
        shutil.copy2(seq_dir / "seqinfo.ini", target / "seqinfo.ini")
        shutil.copy2(seq_dir / "gt" / "gt.txt", target / "gt" / "gt.txt")
        if val_split == "half-val":
            write_half_split(seq_dir, out_dir=target)
            frames = half_frames(seq.info.seq_length, "half-val")
            start, stop = frames.start, frames.stop - 1
        else:
            start, stop = 1, seq.info.seq_length
        val_entries.append(
            {"name": seq_dir.name, "path": str(seq_dir), "start": start, "stop": stop}
        )
    write_json(out_dir / "val.json", {"split": val_split, "sequences": val_entries})
    return _write_stats(out_dir, val_split, len(val_entries), train_sources, class_names)


def _write_stats(
    out_dir: Path,
    val_split: str,
    val_count: int,
    train_sources: Iterable[Any],
    class_names: Sequence[str],
) -> dict[str, Any]:
    """Load the training sources exactly as training will and write their counts."""
    sources = []
    for src in train_sources:
        loaded = load_source(src, class_names)
        sources.append(
            {
                "kind": src.kind,
                "path": str(src.path),
                "subset": src.subset if src.kind == "mot" else None,
                "videos": len(loaded.videos),
                "frames": sum(len(v.frames) for v in loaded.videos),
                "key_frames": len(loaded.keys),
                "dropped_annotations": int(getattr(loaded, "dropped_annotations", 0)),
            }
        )
    stats = {"val_split": val_split, "val_sequences": val_count, "train_sources": sources}
    write_json(out_dir / "stats.json", stats)
    return stats


# --------------------------------------------------------------------------- CLI


def dvc_pull(targets: str, remote: str = "") -> None:
    """``dvc pull TARGETS`` in the current folder, which may have no git (an image).

    DVC is told there is no git (``core.no_scm``) and to send no analytics; ``remote``
    (when given) becomes the default remote, with ``AWS_ENDPOINT_URL`` as its endpoint
    for MinIO and other S3-compatible stores. Credentials come from the environment.
    """
    commands = [
        ["config", "--local", "core.no_scm", "true"],
        ["config", "--local", "core.analytics", "false"],
    ]
    if remote:
        commands.append(["remote", "add", "--local", "--force", "--default", "pipeline", remote])
        if os.environ.get("AWS_ENDPOINT_URL"):
            endpoint = os.environ["AWS_ENDPOINT_URL"]
            commands.append(["remote", "modify", "--local", "pipeline", "endpointurl", endpoint])
    commands.append(["pull", *targets.split()])
    for command in commands:
        done = subprocess.run(["dvc", *command], check=False, capture_output=True, text=True)
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise ValueError(f"dvc {' '.join(command)} failed: {message[-1] if message else ''}")


def _write_path_output(path_output: str | None, folder: Path) -> None:
    """The folder's path into ``--path-output`` (a KFP output parameter file)."""
    if path_output:
        Path(path_output).parent.mkdir(parents=True, exist_ok=True)
        Path(path_output).write_text(str(folder), encoding="utf-8")


def dataset_key(settings: DataConfig, dvc_targets: str = "") -> str:
    """The store name of the dataset ``prepare`` makes from ``settings``.

    Covers the data settings, the code that writes the dataset, and for a dataset on disk
    its file listing and the ``.dvc`` files it was pulled with.
    """
    on_disk: list[Any] = []
    if settings.source == "path" and Path(settings.path).is_dir():
        on_disk = [tree_listing(Path(settings.path))]
        on_disk += [Path(t).read_text() for t in dvc_targets.split() if Path(t).is_file()]
    return "dataset-" + fingerprint(to_plain(settings), code_fingerprint(), on_disk)


def main_prepare(args: argparse.Namespace) -> int:
    """``qdtrack data prepare``."""
    settings = stage_config(args.config, args.set).data
    if args.dvc_pull.strip():
        dvc_pull(args.dvc_pull, args.dvc_remote)
    if args.store:
        key = dataset_key(settings, args.dvc_pull)
        folder, reused = stored(Path(args.store), key, lambda out: prepare_dataset(settings, out))
        _write_path_output(args.path_output, folder)
        sys.stdout.write(f"prepare: {'reused' if reused else 'wrote'} {folder}\n")
        return 0
    manifest = prepare_dataset(settings, args.out)
    train = manifest.get("train") or [
        s for s in manifest.get("sequences", []) if s.get("split") == "train"
    ]
    sys.stdout.write(
        f"prepare: {settings.source} dataset with {len(train)} train sequences -> {args.out}\n"
    )
    return 0


def main_convert(args: argparse.Namespace) -> int:
    """``qdtrack data convert``."""
    config = stage_config(args.config, args.set)
    settings = config.data
    class_names = resolve_classes(config.model).class_names()

    def convert(out: str | Path) -> dict[str, Any]:
        return convert_dataset(
            args.data,
            out,
            val_split=settings.val_split,
            train_sources=config.train.sources,
            settings=settings,
            class_names=class_names,
        )

    if args.store:
        inputs = [str(Path(args.data).resolve()), to_plain(settings), to_plain(config.train)]
        key = "converted-" + fingerprint(inputs, class_names, code_fingerprint())
        folder, reused = stored(Path(args.store), key, convert)
        _write_path_output(args.path_output, folder)
        sys.stdout.write(f"convert: {'reused' if reused else 'wrote'} {folder}\n")
        return 0
    stats = convert(args.out)
    for source in stats["train_sources"]:
        sys.stdout.write(
            f"convert: {source['kind']} {source['path']} ({source['subset'] or 'all'}): "
            f"{source['videos']} videos, {source['key_frames']} key frames\n"
        )
    sys.stdout.write(f"convert: {stats['val_sequences']} val sequences ({settings.val_split})\n")
    return 0
