"""A stand-in ``qdtrack`` for running the container components' scripts in tests.

It parses its arguments with the real ``qdtrack`` parser (exit 2 on anything the CLI
would refuse), checks that the files and folders it is told to read exist (exit 3),
records the call in ``$QDTRACK_SHIM_LOG`` (one JSON line: argv and working folder) and
writes empty stand-ins for the outputs, so the script goes on as it would in a pod.
``qdtrack gate`` exits with ``$QDTRACK_SHIM_GATE_EXIT`` (default 0).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qdtrack.cli import build_parser

# option dest -> must exist before the call
_INPUTS = ("config", "data", "checkpoint", "manifest", "candidate", "gt", "results",
           "export", "metrics", "decision")  # fmt: skip


def _outputs(args) -> None:
    command = args.handler
    if command in ("data prepare", "data convert", "track-val", "export"):
        Path(getattr(args, "out", None) or args.out_dir).mkdir(parents=True, exist_ok=True)
    elif command == "train":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "last.pt").write_bytes(b"checkpoint")
        (out / "losses.csv").write_text("step,loss\n")
    elif command in ("evaluate", "gate"):
        for name in ("out", "summary", "per_sequence_csv"):
            path = getattr(args, name, None)
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text("{}")


def main() -> int:
    argv = sys.argv[1:]
    args = build_parser().parse_args(argv)  # SystemExit(2) on a refused argument
    with open(os.environ["QDTRACK_SHIM_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
    missing = [
        f"--{name.replace('_', '-')} {getattr(args, name)}"
        for name in _INPUTS
        if isinstance(getattr(args, name, None), str) and not Path(getattr(args, name)).exists()
    ]
    if missing:
        sys.stderr.write(f"qdtrack shim: missing inputs: {missing}\n")
        return 3
    _outputs(args)
    if args.handler == "gate":
        return int(os.environ.get("QDTRACK_SHIM_GATE_EXIT", "0"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
