"""A fake Triton detector and frame helpers for the sidecar's fast unit tests.

The fake reads the frame index from the pixels (every pixel = index % 256), so its
answer depends on the frame, not on the order calls arrive in — as a real model's does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import cv2
import numpy as np

from qdtrack.export.serving_contract import ServingContract
from qdtrack.structures import Detections
from serving.sidecar.errors import SidecarError, StoreUnavailable
from serving.sidecar.frames import resize_for_model
from serving.sidecar.settings import Settings
from serving.sidecar.state import MemoryStore, SaveOutcome, StreamRecord, Version
from serving.sidecar.triton_client import Inference

FRAME_W, FRAME_H = 64, 48
NUM_OBJECTS = 3
EMBED_DIM = 8


def frame_pixels(index: int, width: int = FRAME_W, height: int = FRAME_H) -> np.ndarray:
    """An (H, W, 3) uint8 BGR frame whose pixels all encode ``index``."""
    return np.full((height, width, 3), index % 256, np.uint8)


def png(index: int, **kwargs: int) -> bytes:
    """``frame_pixels(index)`` as PNG bytes."""
    ok, buf = cv2.imencode(".png", frame_pixels(index, **kwargs))
    assert ok
    return buf.tobytes()


def jpeg(index: int) -> bytes:
    """``frame_pixels(index)`` as JPEG bytes (a flat image survives JPEG exactly enough)."""
    ok, buf = cv2.imencode(".jpg", frame_pixels(index), [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    return buf.tobytes()


class FakeDetector:
    """``Detector`` with scripted behaviour.

    ``NUM_OBJECTS`` objects drift right by one pixel per frame index; each has a one-hot
    embedding so the tracker keeps their ids. Set ``error`` to make calls fail, ``delay_s``
    to make them slow, ``version`` to change the reported model version, ``contract`` to
    serve another resize rule or tracker (its ``model_version`` is ``version``).
    """

    def __init__(self, *, version: str = "1", delay_s: float = 0.0) -> None:
        self.version = version
        self.contract = ServingContract(
            model_version=version,
            img_scale=(64, 64),
            class_names=("pedestrian",),
            tracker={"type": "qdtrack"},
            embedding_dim=EMBED_DIM,
            max_detections=100,
        )
        self.delay_s = delay_s
        self.error: SidecarError | None = None
        self.quality: dict[str, float] = {}  # the deployed metrics of the served version
        self.ready = True
        self.calls = 0

    async def detect(self, image: np.ndarray) -> Inference:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        contract = dataclasses.replace(self.contract, model_version=self.version)
        frame = resize_for_model(image, contract.img_scale)
        shift = float(frame.image[0, 0, 0])  # the frame index, read from the pixels
        x = np.arange(NUM_OBJECTS, dtype=np.float32) * 18.0 + shift * 0.1
        boxes = np.stack([x, np.full_like(x, 4.0), x + 12.0, np.full_like(x, 40.0)], axis=1)
        dets = Detections(
            (boxes / frame.scale_factor).astype(np.float32),
            np.full(NUM_OBJECTS, 0.95, np.float32),
            np.zeros(NUM_OBJECTS, np.int64),
            np.eye(NUM_OBJECTS, EMBED_DIM, dtype=np.float32),
        )
        return Inference(dets, self.version, 0.001, contract, dict(self.quality))

    async def model_ready(self) -> bool:
        return self.ready

    async def close(self) -> None:
        return None


class FlakyStore(MemoryStore):
    """``MemoryStore`` that fails every call while ``down`` is set (Redis outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("state store unavailable: fake outage")

    async def create(self, stream_id: str, record: StreamRecord, ttl_s: float) -> bool:
        self._check()
        return await super().create(stream_id, record, ttl_s)

    async def load(self, stream_id: str, ttl_s: float) -> StreamRecord | None:
        self._check()
        return await super().load(stream_id, ttl_s)

    async def save(
        self, stream_id: str, record: StreamRecord, expected: Version, ttl_s: float
    ) -> SaveOutcome:
        self._check()
        return await super().save(stream_id, record, expected, ttl_s)

    async def delete(self, stream_id: str, tombstone_ttl_s: float) -> bool:
        self._check()
        return await super().delete(stream_id, tombstone_ttl_s)

    async def ping(self) -> bool:
        return not self.down


def make_settings(**overrides: Any) -> Settings:
    """Unit-test settings: a small body limit."""
    values: dict[str, Any] = {"max_body_bytes": 64 * 1024}
    values.update(overrides)
    return Settings(**values)
