"""Checkpoints in the exact published mmtracking layouts, and a local server for them.

The R-50 layout is the published key list in ``tests/fixtures`` (364 keys, shapes and
dtypes). The R-101 / 482-class layout is built from it with two facts, checked against
mmtracking's configs ``qdtrack_faster-rcnn_r101_fpn_24e_lvis`` / ``..._12e_tao`` (depth 101,
``bbox_head.num_classes=482``, mmdet's ``Shared2FCBBoxHead`` default
``reg_class_agnostic=False``):

* ResNet-101 has 3 / 4 / 23 / 3 blocks, so layer3 gains blocks 6..22, each shaped like
  layer3 blocks 1..5 (the ones without downsample);
* the box head has ``num_classes + 1`` class rows and ``4 * num_classes`` delta rows.

Values are random (:func:`random_state` says how they are scaled so that the network
detects something).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mmtracking_qdtrack_r50_keys.json"
CLS = "detector.roi_head.bbox_head.fc_cls"
REG = "detector.roi_head.bbox_head.fc_reg"
R101_LAYER3_BLOCKS = 23
TAO_CLASSES = 482

Layout = dict[str, tuple[tuple[int, ...], torch.dtype]]


def r50_layout() -> Layout:
    """The published R-50 key list: key -> (shape, dtype), in file order."""
    entries = json.loads(FIXTURE.read_text())["keys"]
    return {e["key"]: (tuple(e["shape"]), getattr(torch, e["dtype"])) for e in entries}


def r101_layout(num_classes: int = TAO_CLASSES) -> Layout:
    """The R-101-FPN layout with ``num_classes`` classes, derived from the R-50 list."""
    r50 = r50_layout()
    block = re.compile(r"^detector\.backbone\.layer3\.1\.(.+)$")
    template = {m.group(1): r50[key] for key in r50 if (m := block.match(key))}
    out: Layout = {}
    for key, value in r50.items():
        out[key] = value
        if key == "detector.backbone.layer3.5.bn3.num_batches_tracked":  # last layer3 key
            for index in range(6, R101_LAYER3_BLOCKS):
                for suffix, shape_dtype in template.items():
                    out[f"detector.backbone.layer3.{index}.{suffix}"] = shape_dtype
    out[f"{CLS}.weight"] = ((num_classes + 1, 1024), torch.float32)
    out[f"{CLS}.bias"] = ((num_classes + 1,), torch.float32)
    out[f"{REG}.weight"] = ((4 * num_classes, 1024), torch.float32)
    out[f"{REG}.bias"] = ((4 * num_classes,), torch.float32)
    return out


def random_state(
    layout: Layout, *, seed: int, favoured_class: int = 0, favoured_bias: float = 4.0
) -> OrderedDict[str, torch.Tensor]:
    """Random tensors of ``layout`` that keep activations O(1) and detect confidently.

    Weights are N(0, 1 / fan_in) (variance-preserving), normalisation layers identity
    (BatchNorm statistics (0, 1), weight 1, bias 0) except each bottleneck's last
    BatchNorm, whose small random weights keep the residual sums from growing through 33
    blocks. Features then vary with the image, so scores and embeddings differ between
    boxes (random weights with a flat scale give ties everywhere). Box deltas are kept
    small, so proposals stay near their anchors, over the image. ``favoured_class`` (an
    mmdet label) gets a class bias of 4: its boxes score about 0.95 or more, above the
    MOT17 tracker's 0.9.
    """
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, (shape, dtype) in layout.items():
        name = key.rsplit(".", 1)[-1]
        if not dtype.is_floating_point:
            state[key] = torch.randint(0, 1000, shape, dtype=dtype, generator=generator)
        elif name == "running_var":
            state[key] = torch.ones(shape)
        elif len(shape) >= 2:  # conv / linear weight; box regressors 10x smaller
            fan_in = int(torch.tensor(shape[1:]).prod())
            scale = (
                0.1 if key.startswith((f"{REG}.", f"{CLS}.", "detector.rpn_head.rpn_reg.")) else 1.0
            )
            state[key] = torch.randn(shape, generator=generator) * scale / fan_in**0.5
        elif ".bn3." in key and name == "weight":
            state[key] = torch.randn(shape, generator=generator) * 0.1
        elif re.search(r"\.(bn\d|gn|downsample\.1)\.weight$", key):
            state[key] = torch.ones(shape)
        elif name == "bias" and re.search(r"\.(conv|fc_|fcs|shared_fcs|rpn_)", key):
            state[key] = torch.randn(shape, generator=generator) * 0.01
        else:  # normalisation biases and running means
            state[key] = torch.zeros(shape)
    state[f"{CLS}.bias"][favoured_class] = favoured_bias
    return state


def save_published(
    state: OrderedDict[str, torch.Tensor], folder: Path, stem: str, class_names: tuple[str, ...]
) -> Path:
    """Save in mmcv's published layout as ``<stem>-<first 8 hex of its SHA-256>.pth``."""
    meta = {
        "mmtrack_version": "0.13.0",
        "config": "model = dict(type='QDTrack')",
        "CLASSES": class_names,
        "epoch": 4,
        "iter": 1000,
        "mmcv_version": "1.5.0",
        "time": "Tue Mar 15 14:56:35 2022",
    }
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / f"{stem}.pth.tmp"
    torch.save({"meta": meta, "state_dict": state}, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    final = folder / f"{stem}-{digest[:8]}.pth"
    scratch.replace(final)
    return final


def tao_class_names() -> tuple[str, ...]:
    """482 made-up names standing in for the checkpoint's ``meta["CLASSES"]``."""
    return tuple(f"tao_class_{i:03d}" for i in range(TAO_CLASSES))


@dataclass
class FileServer:
    """A local HTTP server over ``root`` that counts the GET requests it answers."""

    root: Path
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(root: Path) -> Iterator[FileServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends."""
    server_state = FileServer(root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            server_state.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
