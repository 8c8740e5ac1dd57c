"""Draw docs/synth_multiclass.jpg: four frames of a multi-class synthetic val sequence with
the ground-truth boxes coloured by class.

    python docs/draw_synth_classes.py [--classes 3] [--out docs/synth_multiclass.jpg]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from qdtrack.data.mot import list_sequences, load_sequence
from qdtrack.data.synth import SynthConfig, generate

#: BGR colour and name per category id (the generator's classes).
CLASSES = {1: ((60, 200, 60), "person"), 2: ((40, 40, 220), "car"), 3: ((220, 120, 30), "dog"),
           4: ((30, 200, 220), "ball")}  # fmt: skip
FRAMES = (15, 45, 75, 105)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "synth_multiclass.jpg"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), SynthConfig(num_classes=args.classes), seed=0, progress=False)
        seq = load_sequence(list_sequences(Path(tmp) / "val")[0])
        assert seq.gt is not None
        tiles = []
        for frame in FRAMES:
            image = cv2.imread(str(seq.image_paths()[frame - 1]))
            rows = seq.gt.select(seq.gt.frames == frame)
            for box, cls, ident in zip(rows.boxes_xyxy, rows.classes, rows.ids, strict=True):
                colour, name = CLASSES[int(cls)]
                x1, y1, x2, y2 = (round(float(v)) for v in box)
                cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1)
                cv2.putText(image, f"{name} {ident}", (x1, max(y1 - 3, 8)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1, cv2.LINE_AA)  # fmt: skip
            cv2.putText(image, f"{seq.info.name} frame {frame}", (4, 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
            tiles.append(image)
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    cv2.imwrite(args.out, grid, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.out}")  # noqa: T201


if __name__ == "__main__":
    main()
