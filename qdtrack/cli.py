"""The ``qdtrack`` command line: one entry point, one subcommand per step.

Each subcommand parses its arguments here and hands them to a ``main(args) -> int``
function in the module that does the work, so modules stay importable without argparse.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# subcommand -> module whose ``main(args) -> int`` runs it (imported lazily: keeps
# ``qdtrack --help`` fast and avoids importing TrackEval for ``associate``).
_HANDLERS = {
    "associate": "qdtrack.associate:main",
    "evaluate": "qdtrack.evaluation.stage:main",
    "data synth": "qdtrack.data.synth:main",
    "data det2frames": "qdtrack.associate:main_det2frames",
    "data from-video": "qdtrack.cli:_main_from_video",
    "data prepare": "qdtrack.data.prepare:main_prepare",
    "data convert": "qdtrack.data.prepare:main_convert",
    "track-val": "qdtrack.inference.commands:main_val",
    "convert-checkpoint": "qdtrack.convert:main",
    "train": "qdtrack.train:main",
    "track": "qdtrack.inference.commands:main",
    "export": "qdtrack.export.repository:main",
    "gate": "qdtrack.gate:main",
    "deploy": "qdtrack.deploy:main",
    "stream": "serving.client:main",
    "weights list": "qdtrack.zoo:main_list",
    "weights fetch": "qdtrack.zoo:main_fetch",
}

#: What ``--weights`` (and ``train --init``) accept.
_WEIGHTS_HELP = (
    "model zoo name (qdtrack weights list), http(s) URL or local file of a project or "
    "mmtracking checkpoint; downloaded and converted once, then cached"
)


def _config_arguments(
    parser: argparse.ArgumentParser,
    *,
    default: str | None = "params.yaml",
    config_help: str = "params file (default %(default)s)",
) -> None:
    """``--config FILE`` and repeated ``--set KEY=VALUE``: the settings of every stage."""
    parser.add_argument("--config", default=default, metavar="FILE", help=config_help)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.lr=0.01 or --set tracker.type=iou "
        "(repeatable; a JSON list of KEY=VALUE strings also works)",
    )


_FROM_CHECKPOINT = (
    "params file whose blocks to use (default: the configuration stored in the "
    "checkpoint); the model block always comes from the checkpoint"
)


def _add_associate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "associate",
        help="run a tracker over precomputed detections and embeddings",
        description="Re-track precomputed detections (and embeddings) without the network.",
    )
    p.add_argument("--input", required=True, help="frames.json with detections per frame")
    p.add_argument("--output", required=True, help="tracks.json to write")
    _config_arguments(
        p,
        default=None,
        config_help="params file whose tracker block to use (default: qdtrack "
        "with the MOT17 settings)",
    )
    p.add_argument(
        "--mot-output",
        default=None,
        help="also write MOTChallenge results (frame_id + 1 as the MOT frame)",
    )
    p.set_defaults(handler="associate")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score tracks with TrackEval (MOTChallenge HOTA/CLEAR/Identity, TAO Track AP) "
        "or detections with COCO box AP",
        description="Evaluate tracker results against MOTChallenge or TAO ground truth with "
        "TrackEval, or detections against COCO-style ground truth with pycocotools. The "
        "benchmark is evaluate.benchmark, the MOTChallenge split data.val_split.",
    )
    p.add_argument(
        "--gt",
        required=True,
        help="MOT*: GT_DIR with <seq>/gt/gt.txt and <seq>/seqinfo.ini; TAO: gt JSON or a "
        "folder with exactly one .json; COCO: gt JSON",
    )
    p.add_argument(
        "--results",
        required=True,
        help="MOT*: RES_DIR with <seq>.txt per sequence; TAO: tracks.json or a folder with "
        "tracks.json (and optionally detections.json, scored as box AP too); COCO: "
        "detections.json or a folder with it",
    )
    _config_arguments(
        p,
        default=None,
        config_help="params file (evaluate.benchmark, data.val_split and the "
        "gate block, checked early; default: MOT17 on the full split)",
    )
    p.add_argument("--out", default=None, help="metrics.json to write")
    p.add_argument(
        "--summary", default=None, help="also write the headline combined metrics (JSON)"
    )
    p.add_argument(
        "--per-sequence-csv",
        default=None,
        help="also write per-sequence (TAO: per-class) metrics (CSV, for plots)",
    )
    p.set_defaults(handler="evaluate")


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset tools")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    s = data_sub.add_parser(
        "synth",
        help="write the deterministic synthetic MOTChallenge + CrowdHuman dataset",
    )
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train-seqs", type=int, default=None, help="number of train sequences")
    s.add_argument("--val-seqs", type=int, default=None, help="number of val sequences")
    s.add_argument("--frames", type=int, default=None, help="frames per sequence")
    s.add_argument("--crowdhuman-images", type=int, default=None)
    s.add_argument(
        "--classes",
        dest="num_classes",
        type=int,
        default=None,
        help="object classes 1..4 (person, car, dog, ball; default 1): more than 1 adds TAO "
        "annotations of the sequences and writes LVIS stills instead of CrowdHuman ones",
    )
    s.set_defaults(handler="data synth")
    d = data_sub.add_parser(
        "det2frames",
        help="convert a MOTChallenge det.txt into an associate input (frames.json)",
    )
    d.add_argument("--seq", required=True, help="sequence folder with seqinfo.ini")
    d.add_argument("--det", default=None, help="detections file (default SEQ/det/det.txt)")
    d.add_argument("--out", required=True, help="frames.json to write")
    d.add_argument("--min-score", type=float, default=-float("inf"))
    d.set_defaults(handler="data det2frames")
    v = data_sub.add_parser(
        "from-video", help="decode a video into a MOTChallenge sequence folder (img1/*.jpg)"
    )
    v.add_argument("video", help="video file")
    v.add_argument("--out", required=True, help="sequence folder to write")
    v.add_argument(
        "--annotations", default=None, help="sequence folder whose gt/, det/, fps to copy"
    )
    v.add_argument("--name", default=None)
    v.set_defaults(handler="data from-video")
    pr = data_sub.add_parser(
        "prepare",
        help="pipeline step: synthesize the default data or check and link a dataset on disk",
    )
    _config_arguments(pr)
    _out_or_store(pr, "dataset folder to write (replaced)")
    pr.add_argument(
        "--dvc-pull",
        default="",
        metavar="TARGETS",
        help="first `dvc pull` these space-separated targets (e.g. datasets/MOT17.dvc) in "
        "the current folder, which needs no git (core.no_scm); empty: no pull",
    )
    pr.add_argument(
        "--dvc-remote", default="", metavar="URL", help="remote to pull from (empty: the default)"
    )
    pr.set_defaults(handler="data prepare")
    cv = data_sub.add_parser(
        "convert",
        help="pipeline step: validation ground truth (half split), val.json, checked sources",
    )
    _config_arguments(cv)
    cv.add_argument("--data", required=True, help="dataset folder from `data prepare`")
    _out_or_store(cv, "folder to write (replaced)")
    cv.set_defaults(handler="data convert")


def _out_or_store(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--out DIR``, or ``--store DIR`` (+ ``--path-output FILE``) for a pipeline step."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help=out_help)
    where.add_argument(
        "--store",
        metavar="DIR",
        help="write into DIR/<fingerprint of the inputs> instead, reusing it when it exists "
        "(the pipeline's workspace volume)",
    )
    parser.add_argument(
        "--path-output", metavar="FILE", help="with --store: write the folder's path to FILE"
    )


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-checkpoint",
        help="convert published mmtracking / mmdet weights into a project checkpoint",
    )
    p.add_argument("checkpoint", help="mmtracking QDTrack R-50-FPN or R-101-FPN checkpoint (.pth)")
    p.add_argument("output", help="project checkpoint to write")
    p.add_argument(
        "--keep-num-batches-tracked",
        action="store_true",
        help="keep BatchNorm num_batches_tracked buffers (only for an nn.BatchNorm2d backbone)",
    )
    p.add_argument(
        "--from",
        dest="source_format",
        choices=["mmtracking", "mmdet"],
        default="mmtracking",
        help="mmtracking QDTrack checkpoint (default) or an mmdet Faster R-CNN R-50-FPN "
        "detector such as the COCO-person initialisation (for train --init)",
    )
    p.add_argument(
        "--classes-file",
        default=None,
        help="class names in label order, one per line (default: the checkpoint's meta CLASSES)",
    )
    p.set_defaults(handler="convert-checkpoint")


def _add_weights(p: argparse.ArgumentParser) -> None:
    """``--checkpoint FILE`` or ``--weights NAME|FILE|URL`` (one of them)."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", help="project checkpoint (.pt)")
    group.add_argument("--weights", help=_WEIGHTS_HELP)


def _resolve_weights(args: argparse.Namespace) -> None:
    """Replace ``--weights`` / ``train --init`` specs by a local project checkpoint path."""
    if getattr(args, "weights", None) is None and getattr(args, "init", None) is None:
        return
    # By name, as the handlers are: only the commands given --weights or --init load the zoo
    # (and their DVC stages do not depend on it).
    resolve_weights = importlib.import_module("qdtrack.zoo").resolve_weights

    if getattr(args, "weights", None) is not None:
        args.checkpoint = str(Path(resolve_weights(args.weights)).resolve())
    if getattr(args, "init", None) is not None:
        args.init = str(Path(resolve_weights(args.init)).resolve())


def _add_weights_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="the published QDTrack checkpoints (model zoo)")
    weights_sub = p.add_subparsers(dest="weights_command", required=True)
    ls = weights_sub.add_parser("list", help="names, training data and published results")
    ls.set_defaults(handler="weights list")
    fetch = weights_sub.add_parser(
        "fetch", help="download and convert now (e.g. before going offline); print the path"
    )
    fetch.add_argument("spec", metavar="WEIGHTS", help=_WEIGHTS_HELP)
    fetch.set_defaults(handler="weights fetch")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train QDTrack (single process, or DDP under torchrun)")
    _config_arguments(p)
    p.add_argument("--out", default="runs/train", help="folder for checkpoints and losses.csv")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if any)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", default=None, help=f"start from these weights: {_WEIGHTS_HELP}")
    p.add_argument(
        "--model-output",
        default=None,
        metavar="DIR",
        help="also copy last.pt and losses.csv there when training ends (a pipeline's "
        "model artifact)",
    )
    p.set_defaults(handler="train")


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track", help="track a video file, an image folder or a MOTChallenge sequence"
    )
    p.add_argument("input", help="video file, image folder or sequence folder")
    _add_weights(p)
    p.add_argument(
        "--out", default=None, help="MOTChallenge result file to write (default: <input name>.txt)"
    )
    p.add_argument("--render", default=None, help="also write a video with the tracks drawn")
    p.add_argument(
        "--save-detections", default=None, help="write detections + embeddings (associate input)"
    )
    _config_arguments(p, default=None, config_help=_FROM_CHECKPOINT)
    p.add_argument("--start", type=int, default=1, help="first frame (1-based)")
    p.add_argument("--stop", type=int, default=None, help="last frame (1-based, inclusive)")
    p.add_argument("--device", default=None)
    p.set_defaults(handler="track")


def _add_track_val(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track-val",
        help="track every validation sequence listed by `data convert` (pipeline step)",
    )
    p.add_argument("--manifest", required=True, help="val.json written by `qdtrack data convert`")
    p.add_argument("--checkpoint", required=True, help="project checkpoint (.pt)")
    p.add_argument("--out-dir", required=True, help="folder for results/, iou_results/, videos")
    _config_arguments(p, default=None, config_help=_FROM_CHECKPOINT)
    p.add_argument("--no-render", action="store_true", help="skip the rendered videos")
    p.add_argument(
        "--no-iou-baseline", action="store_true", help="skip the IoU tracker on the same detections"
    )
    p.add_argument("--device", default=None)
    p.set_defaults(handler="track-val")


def _add_gate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate",
        help="decide whether a candidate may replace the deployed model (champion/challenger)",
        description="Compare a candidate's metrics with gate.criteria and, through "
        "gate.max_drop, with the metrics of the model currently deployed; exit 0 = "
        "deployable, 1 = blocked.",
    )
    p.add_argument("--candidate", required=True, help="the candidate's metrics (summary JSON)")
    _config_arguments(p)
    p.add_argument(
        "--champion",
        default=None,
        help="the deployed model's metrics JSON (default: <deploy.model_repository>/"
        "<deploy.model_name>/champion.json, written by qdtrack deploy)",
    )
    p.add_argument("--out", default=None, help="decision JSON to write (deploy reads it)")
    p.add_argument(
        "--passed-output",
        default=None,
        metavar="FILE",
        help="write true or false there and exit 0 for either decision (a pipeline "
        "branches on the file; errors still exit 2)",
    )
    p.set_defaults(handler="gate")


def _add_deploy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="publish an export as the next version of a Triton model repository",
        description="Copy an export (qdtrack export) into the Triton model repository "
        "deploy.model_repository as a new version of deploy.model_name, make every Triton "
        "replica load it and check that each answers with it, then record it as the "
        "champion; a refused load rolls it back on every replica. Refuses unless the gate "
        "decision passed. The model-control key is read from $TRITON_MODEL_CONTROL_KEY.",
    )
    p.add_argument("--export", required=True, help="model repository written by qdtrack export")
    _config_arguments(p)
    p.add_argument("--metrics", required=True, help="the candidate's metrics (summary JSON)")
    p.add_argument("--decision", required=True, help="decision JSON from qdtrack gate")
    replicas = p.add_mutually_exclusive_group()
    replicas.add_argument(
        "--triton-service",
        default="",
        metavar="NAMESPACE/SERVICE",
        help="make every replica behind this Triton Service load and serve the version "
        "(found from its EndpointSlices; in a pod, with its service account); empty: "
        "publish only",
    )
    replicas.add_argument(
        "--triton-url",
        action="append",
        default=[],
        metavar="URL",
        help="a Triton replica's HTTP URL (repeat for each replica) instead of a Service",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds each replica may take to load and answer with the version "
        "(TensorRT engine builds take minutes; default %(default)s)",
    )
    p.set_defaults(handler="deploy")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write the network as a Triton model repository (ONNX or TensorRT)",
        description="Export detector + embedding head as REPO/<model>/<version>/model.onnx "
        "(or model.plan) with a generated config.pbtxt and export.json. The config's export "
        "block picks the batched graph (Triton dynamic batching) and INT8 (CPU).",
    )
    _add_weights(p)
    p.add_argument("--out", required=True, help="Triton model repository folder")
    _config_arguments(p, default=None, config_help=_FROM_CHECKPOINT)
    p.add_argument(
        "--format",
        choices=["onnx", "onnx-trt-fp16", "tensorrt"],
        default="onnx",
        help="onnx; onnx-trt-fp16 = onnx with --trt-fp16 (TensorRT accelerator, FP16, on GPU); "
        "tensorrt: a model.plan built here",
    )
    p.add_argument("--version", type=int, default=1, help="Triton version folder (default 1)")
    p.add_argument(
        "--instance-kind",
        choices=["cpu", "gpu"],
        default=None,
        help="instance_group kind (default gpu for tensorrt / --trt-fp16, else cpu)",
    )
    p.add_argument("--instance-count", type=int, default=1, help="model instances")
    p.add_argument(
        "--trt-fp16",
        action="store_true",
        help="ONNX on GPU with Triton's ONNX Runtime TensorRT accelerator in FP16",
    )
    p.add_argument(
        "--trt-cache-dir",
        default="/trt-cache",
        help="engine cache of --trt-fp16 on the server (a persistent volume)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace a version folder holding another model"
    )
    p.add_argument(
        "--val-manifest",
        default=None,
        help="val.json of qdtrack data convert: the sequences the INT8 gate tracks "
        "(needed with export.int8)",
    )
    p.add_argument(
        "--val-gt", default=None, help="their ground truth folder, val_gt (with export.int8)"
    )
    p.set_defaults(handler="export")


def _main_from_video(args: argparse.Namespace) -> int:
    from qdtrack.data.frames import video_to_sequence

    info = video_to_sequence(args.video, args.out, name=args.name, annotations=args.annotations)
    print(f"from-video: {info.seq_length} frames {info.im_width}x{info.im_height} -> {args.out}")
    return 0


def _add_stream(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="push a video through the serving stack (sidecar + Triton) and render the tracks",
        description="Send every frame of a video, image folder or sequence to the tracking "
        "sidecar (`make serve`) as one stream and collect the track ids it returns.",
    )
    p.add_argument("video", help="video file, image folder or sequence folder")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the sidecar's base URL")
    p.add_argument("--stream-id", default=None, help="stream id (default: a random one)")
    p.add_argument("--render", default=None, help="write a video with the tracks drawn")
    p.add_argument("--out", default=None, help="write MOTChallenge results")
    p.add_argument(
        "--format", choices=["jpeg", "png", "raw"], default="jpeg", help="frame encoding"
    )
    p.add_argument("--token", default=None, help="bearer token, if the sidecar requires one")
    p.add_argument("--start", type=int, default=1, help="first frame (1-based)")
    p.add_argument("--stop", type=int, default=None, help="last frame (1-based, inclusive)")
    p.add_argument("--keep-open", action="store_true", help="do not close the stream at the end")
    p.add_argument(
        "--retry-deadline", type=float, default=60.0, help="seconds to keep retrying one frame"
    )
    p.set_defaults(handler="stream")


def build_parser() -> argparse.ArgumentParser:
    """The full ``qdtrack`` argument parser."""
    parser = argparse.ArgumentParser(prog="qdtrack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        default=None,
        metavar="DIR",
        help="run the command in DIR (created if missing), like make -C; with --link and no "
        "--workdir, a fresh temporary folder",
    )
    parser.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="REL=PATH",
        help="make REL (relative to the work directory) a link to PATH, e.g. "
        "--link data/dataset=/mnt/inputs/dataset: the stages' relative paths (params.yaml, "
        "val.json) then resolve as under dvc repro (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_associate(sub)
    _add_evaluate(sub)
    _add_data(sub)
    _add_convert(sub)
    _add_train(sub)
    _add_track(sub)
    _add_export(sub)
    _add_track_val(sub)
    _add_gate(sub)
    _add_deploy(sub)
    _add_stream(sub)
    _add_weights_commands(sub)
    return parser


def _enter_workdir(args: argparse.Namespace) -> None:
    """``--workdir`` / ``--link``: move into the work directory, with the links in place.

    ``--config`` and the link targets are read from where ``qdtrack`` started; every other
    relative path is relative to the work directory.
    """
    if args.workdir is None and not args.link:
        return
    links = []
    for item in args.link:
        rel, sep, target = item.partition("=")
        if not sep or not rel or not target or Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"--link {item!r}: expected REL=PATH with a relative REL")
        if not Path(target).exists():
            raise FileNotFoundError(f"--link {item!r}: {target} does not exist")
        links.append((Path(rel), Path(target).resolve()))
    if getattr(args, "config", None):
        args.config = str(Path(args.config).resolve())
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="qdtrack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for rel, target in links:
        link = workdir / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            if not link.is_symlink():
                raise ValueError(f"--link {rel}: {link} exists and is not a link")
            link.unlink()
        link.symlink_to(target, target_is_directory=target.is_dir())
    os.chdir(workdir)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qdtrack`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    module_name, function = _HANDLERS[args.handler].split(":")
    try:
        _resolve_weights(args)
        _enter_workdir(args)
        handler = getattr(importlib.import_module(module_name), function)
        return int(handler(args))
    except (ValueError, FileNotFoundError) as exc:
        # User errors (bad files, bad settings) get one clear line, not a traceback.
        print(f"qdtrack {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
