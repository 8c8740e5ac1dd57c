"""The ``qdtrack`` command line: one entry point, one subcommand per step.

Each subcommand parses its arguments here and hands them to a ``main(args) -> int``
function in the module that does the work, so modules stay importable without argparse.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> module whose ``main(args) -> int`` runs it (imported lazily: keeps
# ``qdtrack --help`` fast and avoids importing TrackEval for ``associate``).
_HANDLERS = {
    "associate": "qdtrack.associate:main",
    "evaluate": "qdtrack.evaluate:main",
    "data synth": "qdtrack.data.synth:main",
    "data det2frames": "qdtrack.associate:main_det2frames",
    "data from-video": "qdtrack.cli:_main_from_video",
    "convert-checkpoint": "qdtrack.convert:main",
    "train": "qdtrack.train:main",
    "track": "qdtrack.track:main",
}


def _add_associate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "associate",
        help="run a tracker over precomputed detections and embeddings",
        description="Re-track precomputed detections (and embeddings) without the network.",
    )
    p.add_argument("--input", required=True, help="frames.json with detections per frame")
    p.add_argument("--output", required=True, help="tracks.json to write")
    p.add_argument("--tracker", choices=["qdtrack", "tao", "iou"], default="qdtrack")
    p.add_argument(
        "--config",
        default="{}",
        help="tracker settings as JSON, e.g. '{\"memo_tracklet_frames\": 10}'",
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
        help="score MOTChallenge results with TrackEval (HOTA, CLEAR, Identity)",
        description="Evaluate tracker results against MOTChallenge ground truth with TrackEval.",
    )
    p.add_argument("--gt", required=True, help="GT_DIR with <seq>/gt/gt.txt and <seq>/seqinfo.ini")
    p.add_argument("--results", required=True, help="RES_DIR with <seq>.txt per sequence")
    p.add_argument("--benchmark", default="MOT17", choices=["MOT17", "MOT16", "MOT15", "MOT20"])
    p.add_argument("--split", default="full", choices=["full", "half-val"])
    p.add_argument("--out", default=None, help="metrics.json to write")
    p.add_argument(
        "--summary", default=None, help="also write the headline combined metrics (JSON)"
    )
    p.add_argument("--gate", default=None, help='criteria such as "HOTA>=55,MOTA>=65"')
    p.add_argument("--baseline", default=None, help="metrics.json of the model to compare with")
    p.add_argument(
        "--max-drop",
        default=None,
        help="allowed drop per metric against --baseline, e.g. HOTA=0.5,IDF1=1",
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


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-checkpoint",
        help="convert published mmtracking / mmdet R-50 weights into a project checkpoint",
    )
    p.add_argument("checkpoint", help="mmtracking QDTrack R-50-FPN checkpoint (.pth)")
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
    p.set_defaults(handler="convert-checkpoint")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train QDTrack (single process, or DDP under torchrun)")
    p.add_argument("--config", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set train.lr=0.01 (repeatable)",
    )
    p.add_argument("--out", default="runs/train", help="folder for checkpoints and losses.csv")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if any)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights")
    p.set_defaults(handler="train")


def _add_track(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track", help="track a video file, an image folder or a MOTChallenge sequence"
    )
    p.add_argument("input", help="video file, image folder or sequence folder")
    p.add_argument("--checkpoint", required=True, help="project checkpoint (.pt)")
    p.add_argument("--out", required=True, help="MOTChallenge result file to write")
    p.add_argument("--render", default=None, help="also write a video with the tracks drawn")
    p.add_argument(
        "--save-detections", default=None, help="write detections + embeddings (associate input)"
    )
    p.add_argument("--tracker-config", default=None, help="JSON tracker settings overrides")
    p.add_argument("--start", type=int, default=1, help="first frame (1-based)")
    p.add_argument("--stop", type=int, default=None, help="last frame (1-based, inclusive)")
    p.add_argument("--device", default=None)
    p.set_defaults(handler="track")


def _main_from_video(args: argparse.Namespace) -> int:
    from qdtrack.data.frames import video_to_sequence

    info = video_to_sequence(args.video, args.out, name=args.name, annotations=args.annotations)
    print(f"from-video: {info.seq_length} frames {info.im_width}x{info.im_height} -> {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``qdtrack`` argument parser."""
    parser = argparse.ArgumentParser(prog="qdtrack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_associate(sub)
    _add_evaluate(sub)
    _add_data(sub)
    _add_convert(sub)
    _add_train(sub)
    _add_track(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qdtrack`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    module_name, function = _HANDLERS[args.handler].split(":")
    handler = getattr(importlib.import_module(module_name), function)
    try:
        return int(handler(args))
    except (ValueError, FileNotFoundError) as exc:
        # User errors (bad files, bad settings) get one clear line, not a traceback.
        print(f"qdtrack {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
